"""The modules one ``prepare_loading`` builds, and the loader their peer imports use.

Touches ``sys.modules`` and package attributes to hide prepared modules; no file I/O.
"""

from __future__ import annotations

import importlib.abc
import linecache
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.machinery import ModuleSpec
from typing import Any

from hotmesh.code.build import Built, redirect_in, redirect_references
from hotmesh.code.imports import BatchImports
from hotmesh.code.versions import Version


@dataclass(eq=False)
class Batch:
    """The modules one prepare_loading builds, as they get built (by order or by import)."""

    thread: int
    sources: dict[str, tuple[str, str | types.CodeType, ModuleSpec | None]]
    built: dict[str, Built] = field(default_factory=dict)
    facades: dict[str, types.ModuleType] = field(default_factory=dict)
    expected: dict[str, Version | None] = field(default_factory=dict)
    hidden: dict[str, types.ModuleType] = field(default_factory=dict)  # built or being built
    gone: dict[str, bool] = field(default_factory=dict)  # loaded modules whose file is gone
    listings: dict[str, frozenset[str]] = field(default_factory=dict)  # directory -> names
    gone_children: dict[str, frozenset[str]] = field(default_factory=dict)  # package -> names
    imports: BatchImports | None = None

    def hide_peers(self) -> None:
        """Take back the sys.modules entries and package attributes peer imports made."""
        for mod, b in self.built.items():
            hidden = b.module
            if hidden is None:
                continue
            if sys.modules.get(mod) is hidden:
                del sys.modules[mod]
            parent, _, child = mod.rpartition(".")
            holder = sys.modules.get(parent) if parent else None
            if holder is not None and holder.__dict__.get(child) is hidden:
                del holder.__dict__[child]

    def redirect_captured(self) -> None:
        """Point bindings of hidden modules and proxies at the real modules; drop them."""
        captured = {
            id(b.module): (b.module, self.facades[m])
            for m, b in self.built.items()
            if b.module is not None
        }
        if self.imports is not None:
            captured.update(self.imports.objects())
            self.imports.views.clear()
            self.imports.proxies.clear()
        self.hidden.clear()
        built = {id(b.module) for b in self.built.values() if b.module is not None}
        # The usual holders first, without the collector: a package's new version
        # binds its children of the batch, a module its imports, a proxy its
        # children. Only what is still held elsewhere needs the pass (_keep_held).
        for b in self.built.values():
            redirect_in(b.version.namespace, captured)
        for key in list(captured):
            if key not in built:  # a proxy (no local name for it: _keep_held counts)
                redirect_in(captured[key][0].__dict__, captured)
        _keep_held(captured, built)
        redirect_references(captured)
        captured.clear()
        for b in self.built.values():
            b.module = None

    def forget_code(self) -> None:
        """Drop the linecache entries of the versions built (the batch failed)."""
        for b in self.built.values():
            if b.code_filename is not None:
                linecache.cache.pop(b.code_filename, None)


class PeerLoader(importlib.abc.Loader):
    """Imports a module of the batch being prepared as its hidden, prepared version."""

    def __init__(self, build: Callable[[str], types.ModuleType | None], name: str) -> None:
        self._build = build  # the code server's: the prepared module, or None
        self.name = name
        self.spec: ModuleSpec | None = None

    def create_module(self, spec: ModuleSpec) -> types.ModuleType | None:
        module = self._build(self.name)
        if module is None:
            raise ImportError(f"{self.name} is being prepared and has no module", name=self.name)
        self.spec = module.__spec__  # the import system replaces it with ours
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        module.__spec__ = self.spec  # already executed by create_module


def _keep_held(captured: dict[int, tuple[Any, types.ModuleType]], built: set[int]) -> None:
    """Drop from ``captured`` what nothing but the batch holds, so most loads skip the heap pass.

    The collector pass finding bindings costs O(every object in the process)
    (about 2.5 ms in a demo node, holding the GIL throughout), so every load
    would cost more as more modules are managed (bench/code.py --only
    scaling). The caller has already redirected the batch's own bindings
    (a package binding its children). Unless bound elsewhere, a proxy is held
    only by its pair here, and a hidden module by its pair and its Built
    (getrefcount adds its argument). A proxy nobody holds is cleared first,
    releasing the hidden children it binds. Anything more is a binding to
    redirect, and keeps the pass; counting high only costs the pass, never
    a missed binding.
    """
    for key, pair in list(captured.items()):
        if key not in built and sys.getrefcount(pair[0]) <= 2:
            pair[0].__dict__.clear()  # a proxy nobody else holds: drop its bindings
            del captured[key]
    for key, pair in list(captured.items()):
        if key in built and sys.getrefcount(pair[0]) <= 3:
            del captured[key]
