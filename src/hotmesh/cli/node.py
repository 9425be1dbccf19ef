"""``hotmesh node``: run a standalone node in the foreground (threads, sockets, signals)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

import hotmesh
from hotmesh._tick import DEFAULT_TICK


def register(subparsers: Any) -> None:
    """Add the ``node`` subcommand."""
    parser = subparsers.add_parser(
        "node",
        help="run a standalone node in the foreground",
        description=(
            "Start a node, join the mesh through the seeds, print 'READY <name> <endpoint>' "
            "on stdout, and run until SIGINT or SIGTERM. Logs go to stderr."
        ),
    )
    parser.add_argument("--name", required=True, help="node name, 'name' or 'name@host'")
    parser.add_argument("--listen", default="tcp://127.0.0.1:0", help="endpoint to bind")
    parser.add_argument(
        "--seed",
        action="append",
        default=[],
        metavar="SEED",
        help=(
            "where to find mesh members (repeat): an endpoint tcp://HOST:PORT, or a provider "
            "dns:NAME:PORT, srv:NAME[@HOST:PORT], file:PATH, local:"
        ),
    )
    parser.add_argument("--cookie-file", help="cluster cookie file (mode 0600)")
    parser.add_argument(
        "--tick", type=float, default=DEFAULT_TICK, help="failure detection time (s)"
    )
    parser.add_argument("--app", metavar="PKG.MOD:FUNC", help="call FUNC(node) after start")
    parser.add_argument(
        "--code-root", action="append", default=[], metavar="R", help="managed code root"
    )
    parser.add_argument("--release", metavar="DIR", help="release directory")
    parser.add_argument("--state-dir", metavar="D", help="this node's state directory")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start the node, print READY, wait for a signal, stop."""
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        node = hotmesh.start(
            args.name,
            listen=args.listen,
            seeds=args.seed,
            cookie_file=args.cookie_file,
            tick=args.tick,
            app=args.app,
            code_roots=args.code_root,
            release=args.release,
            state_dir=args.state_dir,
        )
    except hotmesh.HotmeshError as exc:
        print(f"hotmesh node: {exc}", file=sys.stderr)
        return 1
    except Exception:
        # An --app or an extension failed: say so with its traceback.
        logging.getLogger("hotmesh.node").exception("hotmesh node: %s failed to start", args.name)
        return 1
    try:
        print(f"READY {node.name} {node.endpoint}", flush=True)
        stopping.wait()
    finally:
        node.stop()
    return 0
