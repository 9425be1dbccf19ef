"""``hotmesh demo``: three local nodes that form a mesh and answer calls (threads, sockets).

A placeholder for the full demo cluster, kept in its own module so that it can
be replaced without touching the rest of the CLI.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from typing import Any

import hotmesh


def register(subparsers: Any) -> None:
    """Add the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo",
        help="start a small local mesh and show it working",
        description=(
            "Start three nodes on 127.0.0.1, show that they form a mesh and answer "
            "call and multicall, then wait for Ctrl-C (or exit at once with --no-attach "
            "or without a terminal)."
        ),
    )
    parser.add_argument("--no-attach", action="store_true", help="exit after the show")
    parser.add_argument("--cookie-file", help="cluster cookie file (mode 0600)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start the demo nodes, print what they do, stop them."""
    nodes: list[hotmesh.Node] = []
    try:
        for i in range(1, 4):
            seeds = [nodes[0].endpoint] if nodes else []
            node = hotmesh.start(f"demo{i}", seeds=seeds, cookie_file=args.cookie_file, tick=2.0)
            nodes.append(node)
            print(f"started {node.name} at {node.endpoint}")
        first = nodes[0]
        others = [n.name for n in nodes[1:]]
        for node in nodes:
            peers = [n.name for n in nodes if n is not node]
            if not node.wait_connected(peers, timeout=5.0):
                print("the demo nodes did not form a mesh in time", file=sys.stderr)
                return 1
        for node in nodes:
            print(f"{node.name} sees {', '.join(node.nodes())}")
        for name in others:
            print(f"call({name}, 'os.getpid') -> {first.call(name, 'os.getpid')}")
        results, bad = first.multicall(
            [n.name for n in nodes], "hotmesh._node.connected_nodes", timeout=2.0
        )
        print(f"multicall(all, connected_nodes) -> {len(results)} answers, {len(bad)} bad nodes")
        if args.no_attach or not sys.stdin.isatty():
            return 0
        print(f"demo mesh running in process {os.getpid()}; press Ctrl-C to stop")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print()
        return 0
    except hotmesh.HotmeshError as exc:
        print(f"hotmesh demo: {exc}", file=sys.stderr)
        return 1
    finally:
        for node in reversed(nodes):
            node.stop()
