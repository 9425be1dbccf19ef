"""``hotmesh ls`` and ``hotmesh ping``: the nodes of this host (registry files, sockets)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import hotmesh


def register(subparsers: Any) -> None:
    """Add the ``ls`` and ``ping`` subcommands."""
    ls = subparsers.add_parser(
        "ls",
        help="list the nodes running on this host",
        description="List the nodes of this host's registry (stale entries are cleaned).",
    )
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(func=run_ls)
    ping = subparsers.add_parser(
        "ping",
        help="check that a node answers",
        description=(
            "Send a ping to NODE (a local node name, a mesh member known to a local node, "
            "or an endpoint). Prints 'pong from <name> at <endpoint>' and exits 0, or says why "
            "not and exits 1."
        ),
    )
    ping.add_argument("node", metavar="NODE", help="name, name@host or tcp://host:port")
    ping.add_argument("--timeout", type=float, default=2.0, help="seconds to wait (default 2)")
    ping.add_argument("--cookie-file", help="cluster cookie file (mode 0600)")
    ping.set_defaults(func=run_ping)


def run_ls(args: argparse.Namespace) -> int:
    """Print the local registry."""
    from hotmesh._mesh import registry

    entries = sorted(registry.entries(), key=lambda e: e.name)
    if args.json:
        for e in entries:
            record = {
                "name": e.name,
                "endpoint": e.endpoint,
                "pid": e.pid,
                "started_at": e.started_at,
                "state_dir": e.state_dir,
            }
            print(json.dumps(record))
        return 0
    if not entries:
        print("no hotmesh node runs on this host")
        return 0
    width = max(len(e.name) for e in entries)
    print(f"{'NAME':<{width}}  {'PID':>7}  {'UP':>8}  ENDPOINT")
    for e in entries:
        up = _duration(time.time() - e.started_at)
        print(f"{e.name:<{width}}  {e.pid:>7}  {up:>8}  {e.endpoint}")
    return 0


def run_ping(args: argparse.Namespace) -> int:
    """Ping one node; exit status 0 on pong."""
    from hotmesh._mesh.client import Connection
    from hotmesh._mesh.cookie import load_cookie
    from hotmesh._rpc import client_calls

    try:
        cookie = load_cookie(cookie_file=args.cookie_file, create=False)
        endpoint = client_calls.resolve(args.node, cookie=cookie, timeout=args.timeout)
        with Connection(endpoint, cookie) as conn:
            pong = client_calls.ping(conn, timeout=args.timeout)
    except hotmesh.HotmeshError as exc:
        print(f"no pong from {args.node}: {exc}", file=sys.stderr)
        return 1
    if pong is None:
        print(
            f"no pong from {args.node} at {endpoint} within {args.timeout:g}s "
            "(not running, unreachable, or another cookie)",
            file=sys.stderr,
        )
        return 1
    print(f"pong from {pong.get('node')} at {endpoint}")
    return 0


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"
