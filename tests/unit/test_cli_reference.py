"""docs/reference/cli.md names the commands and options the ``hotmesh`` parser has."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from hotmesh.cli import SUBCOMMANDS, build_parser

CLI_PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "cli.md"

# A command's section: its heading, then its synopsis, the first fenced block.
SECTION = re.compile(r"^### `hotmesh (\w+)`\n\n```\n(hotmesh \1\b.*?)```", re.M | re.S)


def _documented() -> dict[str, set[str]]:
    """Command -> the options its synopsis shows."""
    text = CLI_PAGE.read_text(encoding="utf-8")
    return {
        name: set(re.findall(r"--[a-z][a-z-]*", synopsis))
        for name, synopsis in SECTION.findall(text)
    }


def _parsed() -> dict[str, set[str]]:
    """Command -> the options its parser takes (``-h/--help`` aside)."""
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {
        name: {
            flag
            for action in sub._actions
            for flag in action.option_strings
            if flag.startswith("--") and flag != "--help"
        }
        for name, sub in commands.choices.items()
    }


def test_every_command_has_a_section_with_a_synopsis() -> None:
    assert sorted(_documented()) == sorted(_parsed())


def test_every_documented_option_exists_and_every_option_is_documented() -> None:
    documented, parsed = _documented(), _parsed()
    for name in parsed:
        missing_in_parser = documented.get(name, set()) - parsed[name]
        missing_in_page = parsed[name] - documented.get(name, set())
        assert (name, missing_in_parser, missing_in_page) == (name, set(), set())


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(commands.choices)


def test_the_table_names_the_commands_each_module_registers() -> None:
    everything = _commands(build_parser())
    assert sorted(c for names in SUBCOMMANDS.values() for c in names) == everything
    for module_name, names in SUBCOMMANDS.items():
        for name in names:
            assert _commands(build_parser(name)) == sorted(names), module_name
    assert _commands(build_parser("no-such-command")) == everything


def test_a_node_start_builds_only_the_node_command() -> None:
    # Part of every node's start: the other commands' modules (console client,
    # demo, deploy) stay unloaded.
    script = (
        "import sys\n"
        "from hotmesh.cli import build_parser\n"
        "args = build_parser('node').parse_args(['node', '--name', 'n'])\n"
        "print(args.name, sorted(m for m in sys.modules if m.startswith('hotmesh.cli.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.split() == ["n", "['hotmesh.cli.node']"], done.stderr
