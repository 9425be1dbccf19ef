"""The meta-path finder and loader: importing a managed module yields its facade.

No I/O of its own: locating and reading sources is done by roots and the server.
"""

from __future__ import annotations

import importlib.abc
import types
from importlib.machinery import ModuleSpec, PathFinder
from typing import Any, Protocol

from hotmesh.code.managed_roots import is_source, read_source


class Server(Protocol):
    """What the finder and loader ask the code server (``CodeServer`` is one)."""

    def peer_spec(self, name: str) -> ModuleSpec | None:
        """The spec of a module of the batch being prepared, if ``name`` is one."""
        ...

    def might_manage(self, name: str) -> bool:
        """Whether ``name`` may be managed (before its source is found)."""
        ...

    def manages(self, name: str, origin: str | None) -> bool:
        """Whether module ``name`` with source ``origin`` is managed."""
        ...

    def exec_for_import(self, facade: types.ModuleType) -> None:
        """Build version 1 of a managed module being imported."""
        ...


class ManagedFinder(importlib.abc.MetaPathFinder):
    """Finds managed modules on the normal path and hands them to ManagedLoader."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def find_spec(
        self, fullname: str, path: Any = None, target: types.ModuleType | None = None
    ) -> ModuleSpec | None:
        peer = self.server.peer_spec(fullname)
        if peer is not None:
            return peer
        if not self.server.might_manage(fullname):
            return None
        spec = PathFinder.find_spec(fullname, path)
        if spec is None or not is_source(spec) or not self.server.manages(fullname, spec.origin):
            return None
        spec.loader = ManagedLoader(self.server, fullname, spec.origin)
        return spec

    def invalidate_caches(self) -> None:
        PathFinder.invalidate_caches()


class ManagedLoader(importlib.abc.Loader):
    """Executes version 1 in the new module; ``importlib.reload`` becomes a load_file."""

    def __init__(self, server: Server, name: str, path: str | None) -> None:
        self.server = server
        self.name = name
        self.path = path

    def create_module(self, spec: ModuleSpec) -> types.ModuleType | None:
        return None  # an ordinary module object: it becomes the facade

    def exec_module(self, module: types.ModuleType) -> None:
        self.server.exec_for_import(module)

    def get_source(self, fullname: str) -> str | None:
        """The source on disk (what the next load_file would load)."""
        if self.path is None:
            return None
        try:
            return read_source(self.path)
        except OSError:
            return None

    def is_package(self, fullname: str) -> bool:
        return bool(self.path and self.path.endswith("__init__.py"))

    def get_filename(self, fullname: str) -> str | None:
        return self.path
