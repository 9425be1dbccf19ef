"""The error tree drawn in docs/reference/errors.md and in ``_errors``'s docstring
is the tree of the classes: every error once, under its base."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hotmesh import _errors

ERRORS_PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "errors.md"


def _drawn_parents(drawing: str) -> dict[str, str]:
    """Class -> the class it is drawn under (``A ── B, C`` draws B and C under A)."""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in drawing.splitlines():
        match = re.search(r"[A-Za-z]", line)
        if match is None:
            continue
        depth = match.start()
        text = re.sub(r"\([^)]*\)", "", line[depth:])  # notes such as (.node .step)
        head, *rest = [part.strip() for part in text.split("──")]
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[head] = stack[-1][1]
        stack.append((depth, head))
        for child in (name.strip() for part in rest for name in part.split(",")):
            parents[child] = head
    return parents


def _actual_parents() -> dict[str, str]:
    """Class -> its hotmesh base (or the builtin it derives from directly)."""
    parents = {}
    for name, obj in vars(_errors).items():
        if isinstance(obj, type) and obj.__module__ == _errors.__name__:
            if obj is _errors.HotmeshError:
                continue
            parents[name] = obj.__bases__[0].__name__
    return parents


@pytest.mark.parametrize(
    "drawing",
    [
        pytest.param(ERRORS_PAGE.read_text(encoding="utf-8").split("```")[1:2], id="errors.md"),
        pytest.param((_errors.__doc__ or "").split("\n\n")[1:3], id="_errors docstring"),
    ],
)
def test_the_drawn_tree_is_the_class_tree(drawing: list[str]) -> None:
    drawn = _drawn_parents("\n".join(drawing))
    assert drawn == _actual_parents()
