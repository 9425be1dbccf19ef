"""``python -m hotmesh.demo``: a local demo cluster with live clients, until Ctrl-C.

Starts the nodes and the traffic, ships release v2 to every node's disk (nothing
is loaded until you upgrade from a console), prints how to attach, then a status
line every few seconds. Does process and network I/O (loopback only).
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence

from hotmesh.demo.cluster import DemoCluster


def main(argv: Sequence[str] | None = None, *, stop: threading.Event | None = None) -> int:
    """Run the demo; return 0 if no client request was lost or connection dropped."""
    parser = argparse.ArgumentParser(prog="python -m hotmesh.demo", description=__doc__)
    parser.add_argument("--nodes", type=int, default=3, help="node processes (default 3)")
    parser.add_argument("--connections", type=int, default=2, help="clients per node")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between status lines")
    parser.add_argument(
        "--ship", default="v2", help="release to put on disk once started ('none' to skip)"
    )
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    args = parser.parse_args(argv)
    stop = stop or threading.Event()
    print(f"starting {args.nodes} demo nodes with {args.connections} clients each...", flush=True)
    demo = DemoCluster(args.nodes, connections=args.connections).start()
    try:
        if args.ship != "none":
            demo.ship(args.ship)
        _print_intro(demo, args.ship)
        waited = 0.0
        while args.duration is None or waited < args.duration:
            # The wait is the demo's status cadence, interrupted at once by stop.
            if stop.wait(args.every):
                break
            waited += args.every
            print(demo.status_line(), flush=True)
    except KeyboardInterrupt:
        print()
    finally:
        print("\n".join(demo.node_status()), flush=True)
        report = demo.stop()
    print("traffic:", report.summary())
    for problem in report.problems[:10]:
        print("  " + problem)
    return 0 if report.ok else 1


def _print_intro(demo: DemoCluster, shipped: str) -> None:
    first = demo.names[0].split("@")[0]
    print("\n".join(demo.node_status()))
    if shipped != "none":
        print(f"release {shipped} is on every node's disk; nothing is loaded until you upgrade.")
    print(
        f"attach:   HOTMESH_COOKIE_FILE={demo.cookie_file} hotmesh attach {first}\n"
        "upgrade:  paste snippets/template.py (RELEASE = 'v2'), then upgrade_node() and\n"
        "          rolling_upgrade(); the client lines below switch to the v2 format\n"
        "          without a dropped connection. Ctrl-C stops the demo.",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
