"""docs/reference/cli.md names the commands and options the ``hotmesh`` parser has."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from hotmesh.cli import build_parser

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
