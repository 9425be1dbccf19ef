"""``hotmesh versions``: every node's version, airbag, pending actions and drift,
asked through one node of the mesh (network I/O)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import hotmesh


def register(subparsers: Any) -> None:
    """Add the ``versions`` subcommand."""
    versions = subparsers.add_parser(
        "versions",
        help="show which version every node of the mesh runs",
        description=(
            "Ask NODE (default: a node of this host) for the version of every node of its "
            "mesh: version, confirmed or provisional (time left), upgrade actions pending, "
            "modules modified on disk but not loaded (drift), nodes behind the fleet's "
            "release, unreachable or down. Exits 0 with the table (unreachable nodes "
            "included), 1 when no node can be asked."
        ),
    )
    versions.add_argument(
        "node",
        nargs="?",
        metavar="NODE",
        help="name, name@host or tcp://host:port (default: the first node of this host "
        "that answers)",
    )
    versions.add_argument("--json", action="store_true", help="print JSON instead of the table")
    versions.add_argument(
        "--timeout", type=float, default=5.0, help="seconds each node has to answer (default 5)"
    )
    versions.add_argument("--cookie-file", help="cluster cookie file (mode 0600)")
    versions.set_defaults(func=run_versions)


def run_versions(args: argparse.Namespace) -> int:
    """Print the fleet's versions as seen by one node."""
    from hotmesh._mesh.client import Connection
    from hotmesh._mesh.cookie import load_cookie
    from hotmesh._rpc import client_calls
    from hotmesh.cli.status import nodes_to_ask
    from hotmesh.deploy.fleet import versions_from

    try:
        cookie = load_cookie(cookie_file=args.cookie_file, create=False)
    except hotmesh.HotmeshError as exc:
        print(f"hotmesh versions: {exc}", file=sys.stderr)
        return 1
    targets = nodes_to_ask("versions", args.node)
    if not targets:
        return 1
    errors: list[str] = []
    for target in targets:
        try:
            endpoint = client_calls.resolve(target, cookie=cookie)
            with Connection(endpoint, cookie) as conn:
                raw = client_calls.call(
                    conn,
                    "hotmesh.deploy.versions.node_statuses",
                    timeout=args.timeout + 5.0,
                    per_node_timeout=args.timeout,
                )
        except hotmesh.HotmeshError as exc:
            errors.append(f"cannot ask {target} for the versions: {exc}")
            continue
        versions = versions_from(raw)
        print(versions.as_json() if args.json else versions.table())
        return 0
    print("\n".join(errors), file=sys.stderr)
    return 1
