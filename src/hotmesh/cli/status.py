"""``hotmesh status`` and ``hotmesh who``: the cluster at a glance, asked of one
node (sockets, registry files)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import hotmesh

# Exit statuses: 0 shown; 1 some node did not answer; 2 usage or cookie; 3 no node to ask.
OK, PARTIAL, USAGE, UNREACHABLE = 0, 1, 2, 3


def register(subparsers: Any) -> None:
    """Add the ``status`` and ``who`` subcommands."""
    for name, summary, handler in (
        (
            "status",
            "every node of the cluster: version, airbag state, uptime, consoles attached",
            run_status,
        ),
        ("who", "the consoles attached to every node of the cluster", run_who),
    ):
        parser = subparsers.add_parser(
            name,
            help=summary,
            description=(
                f"Show {summary}, as NODE (default: a node of this host) sees the mesh, "
                "nodes it lost and keeps redialling included (shown as unreachable). "
                "Exit status: 0 shown; 1 some node did not answer or is down; 2 usage "
                "error or missing cookie; 3 no node to ask."
            ),
        )
        parser.add_argument(
            "node", nargs="?", metavar="NODE", help="node to ask (name, name@host or endpoint)"
        )
        parser.add_argument("--json", action="store_true", help="one JSON object per node")
        parser.add_argument("--cookie-file", help="cluster cookie file (mode 0600)")
        parser.add_argument(
            "--timeout", type=float, default=5.0, help="seconds to wait for each node"
        )
        parser.set_defaults(func=handler)


def nodes_to_ask(command: str, node: str | None) -> list[str]:
    """``[node]`` when given, else the endpoints of this host's nodes by name: the
    ones a command asking "a node of this host" tries in turn. None there: says
    so on stderr and returns []."""
    from hotmesh._mesh import registry

    if node:
        return [node]
    targets = [entry.endpoint for entry in sorted(registry.entries(), key=lambda e: e.name)]
    if not targets:
        print(
            f"hotmesh {command}: no hotmesh node runs on this host; name one (NODE)",
            file=sys.stderr,
        )
    return targets


def cluster(args: argparse.Namespace, command: str) -> list[dict[str, Any]] | int:
    """The cluster's status rows, or the exit status after saying why there are none."""
    from hotmesh._mesh.client import Connection
    from hotmesh._mesh.cookie import load_cookie
    from hotmesh._rpc import client_calls

    try:
        cookie = load_cookie(cookie_file=args.cookie_file, create=False)
    except hotmesh.CookieError as exc:
        print(f"hotmesh {command}: {exc}", file=sys.stderr)
        return USAGE
    targets = nodes_to_ask(command, args.node)
    if not targets:
        return UNREACHABLE
    errors = []
    for target in targets:
        try:
            endpoint = client_calls.resolve(target, cookie=cookie, timeout=args.timeout)
            with Connection(endpoint, cookie) as conn:
                rows = client_calls.call(
                    conn,
                    "hotmesh._console.status.cluster_status",
                    args.timeout,
                    timeout=args.timeout + 2.0,
                )
            return list(rows)
        except hotmesh.HotmeshError as exc:
            errors.append(f"{target}: {exc}")
    print(f"hotmesh {command}: no node answered: " + "; ".join(errors), file=sys.stderr)
    return UNREACHABLE


def run_status(args: argparse.Namespace) -> int:
    """``hotmesh status``."""
    rows = cluster(args, "status")
    if isinstance(rows, int):
        return rows
    if args.json:
        for row in rows:
            print(json.dumps(row, sort_keys=True))
    else:
        print(status_table(rows))
    return PARTIAL if any("unreachable" in row for row in rows) else OK


def run_who(args: argparse.Namespace) -> int:
    """``hotmesh who``."""
    rows = cluster(args, "who")
    if isinstance(rows, int):
        return rows
    sessions = [
        {"node": row["node"], **session} for row in rows for session in row.get("sessions", [])
    ]
    if args.json:
        for session in sessions:
            print(json.dumps(session, sort_keys=True))
    else:
        print(who_table(sessions) if sessions else "no console attached to any node")
    return PARTIAL if any("unreachable" in row for row in rows) else OK


def status_table(rows: list[dict[str, Any]]) -> str:
    """The ``hotmesh status`` table: one node per line."""
    table = [("NODE", "VERSION", "AIRBAG", "UP", "CONSOLES")]
    for row in rows:
        if "unreachable" in row:
            table.append((row["node"], "-", "-", "-", f"unreachable: {row['unreachable']}"))
            continue
        left = row.get("provisional_left")
        airbag = "confirmed" if left is None else f"provisional, {left:.0f} s left"
        if row.get("pending"):
            airbag += f"; pending: {', '.join(row['pending'])}"
        consoles = ", ".join(_who(s) for s in row.get("sessions", [])) or "-"
        table.append((row["node"], row["version"], airbag, _duration(row["uptime"]), consoles))
    return _format(table)


def who_table(sessions: list[dict[str, Any]], now: float | None = None) -> str:
    """The ``hotmesh who`` table: one attached console per line."""
    now = time.time() if now is None else now
    table = [("NODE", "USER", "FROM", "VIA", "SINCE", "STATE", "SESSION")]
    for s in sessions:
        state = "detached" if s.get("detached") else "running" if s.get("busy") else "idle"
        since = _duration(now - float(s.get("since", now))) + " ago"
        host = f"{s.get('host', '?')} (pid {s.get('pid', '?')})"
        user, via = str(s.get("user")), str(s.get("via"))
        table.append((s["node"], user, host, via, since, state, s["sid"]))
    return _format(table)


def _who(session: dict[str, Any]) -> str:
    return f"{session.get('user')}@{session.get('host')} ({session.get('via')})"


def _format(table: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in table
    )


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"
