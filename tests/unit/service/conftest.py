"""Managed callback modules written to a tmp dir and loaded through ``hotmesh.code``."""

from __future__ import annotations

import importlib
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hotmesh import code, service


class Callbacks:
    """One callback module on disk: write a version, then load it through the code server."""

    def __init__(self, root: Path, name: str) -> None:
        self.name = name
        self.path = root / f"{name}.py"

    def write(self, source: str) -> None:
        self.path.write_text(textwrap.dedent(source))

    def load(self, source: str) -> code.Version:
        """Write ``source`` and make it the current version (purging the old one first)."""
        self.write(source)
        assert code.soft_purge(self.name), f"old code of {self.name} still running"
        return code.load_file(self.name)


@pytest.fixture
def managed(tmp_path: Path) -> Iterator[Callable[[str], Callbacks]]:
    """Make callback modules with unique names under a managed root; stop services after."""
    root = tmp_path / "managed"
    root.mkdir()
    sys.path.insert(0, str(root))
    code.add_root(str(root))
    made: list[str] = []

    def make(source: str) -> Callbacks:
        callbacks = Callbacks(root, f"hm_svc_{uuid.uuid4().hex[:10]}")
        callbacks.write(source)
        importlib.invalidate_caches()
        importlib.import_module(callbacks.name)
        made.append(callbacks.name)
        return callbacks

    try:
        yield make
    finally:
        for name in service.services():
            if service.service_status(name).module in made:
                service.stop_service(name)
        sys.path.remove(str(root))
