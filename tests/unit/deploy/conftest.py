"""A release directory on disk, set up as a node's deployment in this process
(without a mesh), and forgotten afterwards."""

from __future__ import annotations

import importlib
import itertools
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hotmesh.code as code
from hotmesh.deploy import _startup, _state, airbag
from hotmesh.testing.fakes import FakeNode

_ids = itertools.count()


class Release:
    """A release dir holding one uniquely named managed package."""

    def __init__(self, root: Path, layout: str) -> None:
        self.root = root
        self.pkg = f"hmrel{next(_ids)}_{root.name[-6:].replace('-', '_')}"
        self.layout = layout
        if layout == "symlink":
            self.dir = root / "releases" / "v1"
            self.link = root / "current"
            self.dir.mkdir(parents=True)
            self.link.symlink_to(self.dir)
            self.path = self.link
        else:
            self.dir = root / "release"
            self.dir.mkdir()
            self.path = self.dir
        (self.dir / self.pkg).mkdir()
        (self.dir / self.pkg / "__init__.py").write_text("")
        self.manifest("v1")
        self.state_dir = root / "state"
        self.stop: Any = None
        self.node: FakeNode | None = None

    def manifest(self, version: str, extra: str = "") -> None:
        text = f'version = "{version}"\npackages = ["{self.pkg}"]\n{extra}'
        (self.dir / "hotmesh-release.toml").write_text(text)

    def write(self, module: str, source: str) -> Path:
        path = self.dir / self.pkg / f"{module}.py"
        path.write_text(textwrap.dedent(source).replace("PKG", self.pkg))
        importlib.invalidate_caches()
        return path

    def mod(self, module: str) -> str:
        return f"{self.pkg}.{module}"

    def imp(self, module: str) -> Any:
        return importlib.import_module(self.mod(module))

    def switch_to(self, version: str) -> None:
        """Symlink layout: copy the current release into releases/<version>, point at it."""
        import shutil

        new_dir = self.root / "releases" / version
        shutil.copytree(self.dir, new_dir, ignore=shutil.ignore_patterns("__pycache__"))
        self.dir = new_dir
        tmp = self.root / ".current.tmp"
        tmp.symlink_to(new_dir)
        tmp.replace(self.link)
        self.manifest(version)
        importlib.invalidate_caches()

    def boot(self) -> None:
        """Start the deploy extension as a node start would."""
        self.node = FakeNode("n1@h", self.state_dir, options={"release": str(self.path)})
        self.stop = _startup.start(self.node)

    def halt(self) -> None:
        """Stop the extension and forget the loaded code (a process exit)."""
        if self.stop is not None:
            self.stop()
            self.stop = None
        if self.node is not None:
            self.node.close()
            self.node = None
        code._reset()
        for mod in [m for m in sys.modules if m == self.pkg or m.startswith(self.pkg + ".")]:
            del sys.modules[mod]
        importlib.invalidate_caches()


def _make(tmp_path: Path, layout: str) -> Iterator[Release]:
    # A node starts with an empty code server: what other tests left managed
    # (their files gone with their tmp dirs) is not this node's to upgrade.
    code._reset()
    release = Release(tmp_path, layout)
    release.write("shop", "def answer():\n    return 1\n")
    release.boot()
    try:
        yield release
    finally:
        release.halt()
        while str(release.path) in sys.path:
            sys.path.remove(str(release.path))
        airbag._health_checks.clear()
        assert _state.installed() is None


@pytest.fixture
def release(tmp_path: Path) -> Iterator[Release]:
    """A copy-over release v1 (module ``shop``), booted."""
    yield from _make(tmp_path, "copy")


@pytest.fixture
def linked(tmp_path: Path) -> Iterator[Release]:
    """A symlink-layout release v1 (``current -> releases/v1``), booted."""
    yield from _make(tmp_path, "symlink")
