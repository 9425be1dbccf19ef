"""The ``hotmesh`` command: argparse subcommands, one module per group.

Each module in ``SUBCOMMANDS`` has ``register(subparsers)``, which adds its
subcommands with ``set_defaults(func=handler)``; ``handler(args) -> int`` is the
exit status. To add a group, write its module and add one line to the table,
with the commands it registers: a command line naming one of them builds only
its module's parser (``hotmesh node`` starts without importing the console's,
the demo's or the deploy commands' modules: part of every node's start).
"""

from __future__ import annotations

import argparse
import importlib
import sys

import hotmesh

SUBCOMMANDS: dict[str, tuple[str, ...]] = {
    "hotmesh.cli.node": ("node",),
    "hotmesh.cli.local": ("ls", "ping"),
    "hotmesh.cli.demo": ("demo",),
    "hotmesh.cli.console": ("attach", "eval", "run"),
    "hotmesh.cli.status": ("status", "who"),
    "hotmesh.cli.deploy": ("versions",),
}
"""Module -> the commands its ``register`` adds."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``hotmesh`` parser: with ``command``, only the module adding it registers.

    Without ``command`` (or with one no module adds), every subcommand is
    registered: what the overall help and an unknown command's error list.
    """
    parser = argparse.ArgumentParser(
        prog="hotmesh",
        description="Erlang-style live operations for fleets of long-running Python services.",
    )
    parser.add_argument("--version", action="version", version=f"hotmesh {hotmesh.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = [m for m, commands in SUBCOMMANDS.items() if command in commands]
    for module_name in chosen or SUBCOMMANDS:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``hotmesh`` command; return its exit status."""
    words = sys.argv[1:] if argv is None else argv
    # The command is the first word when it is not an option (the top-level
    # parser's options are only --help and --version).
    parser = build_parser(words[0] if words and not words[0].startswith("-") else None)
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    return int(args.func(args) or 0)
