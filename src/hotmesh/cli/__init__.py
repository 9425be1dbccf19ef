"""The ``hotmesh`` command: argparse subcommands, one module per group.

Each module in ``SUBCOMMANDS`` has ``register(subparsers)``, which adds its
subcommands with ``set_defaults(func=handler)``; ``handler(args) -> int`` is the
exit status. To add a group, write its module and add one line to the list.
"""

from __future__ import annotations

import argparse
import importlib
import sys

import hotmesh

SUBCOMMANDS: list[str] = [
    "hotmesh.cli.node",
    "hotmesh.cli.local",
    "hotmesh.cli.demo",
    "hotmesh.cli.console",
    "hotmesh.cli.status",
    "hotmesh.cli.deploy",
]


def build_parser() -> argparse.ArgumentParser:
    """The ``hotmesh`` parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="hotmesh",
        description="Erlang-style live operations for fleets of long-running Python services.",
    )
    parser.add_argument("--version", action="version", version=f"hotmesh {hotmesh.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in SUBCOMMANDS:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``hotmesh`` command; return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    return int(args.func(args) or 0)
