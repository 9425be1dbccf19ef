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
import os
import sys
from typing import Any

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


def _columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size`` gives it: $COLUMNS,
    else stdout's terminal, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter with the width found without importing shutil.

    argparse makes a formatter for every argument added and imports shutil to
    ask the width, and shutil loads the bz2, lzma and zlib libraries: every
    node started with ``hotmesh node`` would carry them.
    """

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        width = _columns() - 2 if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser using ``_HelpFormatter`` (its subcommands' parsers too)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``hotmesh`` parser: with ``command``, only the module adding it registers.

    Without ``command`` (or with one no module adds), every subcommand is
    registered: what the overall help and an unknown command's error list.
    """
    parser = _Parser(
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
