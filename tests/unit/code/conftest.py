"""Fixture packages on disk for code-server tests, cleaned from sys.modules and the server."""

from __future__ import annotations

import importlib
import itertools
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import hotmesh.code as code

_ids = itertools.count()


class Pkg:
    """A uniquely named package in a temporary directory whose files tests rewrite."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        self.dir = root / name
        self.dir.mkdir()
        (self.dir / "__init__.py").write_text("")

    def write(self, module: str, source: str) -> Path:
        """Write ``<pkg>/<module>.py`` (``__init__`` for the package itself)."""
        path = self.dir.joinpath(*module.split(".")[:-1], module.split(".")[-1] + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).replace("PKG", self.name))
        importlib.invalidate_caches()
        return path

    def mod(self, module: str) -> str:
        """The dotted name of a module of this package."""
        return self.name if module == "__init__" else f"{self.name}.{module}"

    def imp(self, module: str):  # type: ignore[no-untyped-def]
        """Import a module of this package (returns its facade)."""
        return importlib.import_module(self.mod(module))


@pytest.fixture
def pkg(tmp_path: Path) -> Iterator[Pkg]:
    """A fresh managed package on sys.path; everything is forgotten afterwards."""
    name = f"hmfix{next(_ids)}_{tmp_path.name[-6:].replace('-', '_')}"
    package = Pkg(tmp_path, name)
    sys.path.insert(0, str(tmp_path))
    code.add_root(name)
    try:
        yield package
    finally:
        code._reset()
        sys.path.remove(str(tmp_path))
        for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[mod]
        importlib.invalidate_caches()
