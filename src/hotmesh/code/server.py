"""The code server: managed modules, their current and old versions, loads, purges, reverts.

Loads, purges and reverts are serialised by one lock; readers (``current_version``,
attribute reads through facades) never take it. Every switch is published in
one C-level batch of ``dict.update`` calls, so under the GIL no reader sees
half of a multi-module switch. Reads the file system and executes module code.

What only loads, purges, scans and checks use (building versions, batches,
suspension, purging, stale references, xref, dependents) is imported by the
method that first needs it: a node creates this server when it first
manages code (``hotmesh.code._server``), and most never load a module.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import itertools
import linecache
import os
import sys
import threading
import time
import types
from collections.abc import Callable, Iterable, Iterator
from importlib.machinery import ModuleSpec
from typing import TYPE_CHECKING, Any, Literal

from hotmesh._errors import CodeError, LoadError, NotManaged, StickyModule, XrefError
from hotmesh._record import field, record

# Imported here, before the package binds its function ``dependents``: a later
# first import of this submodule would rebind that name to the module.
from hotmesh.code.dependent_modules import find_dependents, import_time_uses, may_import
from hotmesh.code.facade import Switch, deleted_namespace, identity_of, make_c_functions
from hotmesh.code.managed_roots import (
    Root,
    is_source,
    is_sticky,
    locate,
    make_root,
    modules_under,
    read_source,
)
from hotmesh.code.versions import (
    EMPTY,
    Entry,
    Version,
    after_delete,
    after_load,
    after_purge,
    after_revert,
    check_loadable,
    make_vsn,
    source_hash,
)

if TYPE_CHECKING:
    from hotmesh.code.batch import Batch
    from hotmesh.code.build import Built
    from hotmesh.code.finder import ManagedFinder
    from hotmesh.code.purging import PurgeReport
    from hotmesh.code.stale import StaleReference
    from hotmesh.code.suspend import Suspension
    from hotmesh.code.xref_index import XrefIndex
    from hotmesh.code.xref_source import Problem

Status = Literal["not_loaded", "loaded", "modified", "removed"]

PARTS = (
    "hotmesh.code.batch",
    "hotmesh.code.build",
    "hotmesh.code.purging",
    "hotmesh.code.scan",
    "hotmesh.code.stale",
    "hotmesh.code.suspend",
    "hotmesh.code.xref_index",
    "hotmesh.code.xref_source",
)
"""The parts a load, purge or check imports on first use (a node's start does not)."""


def load_parts() -> None:
    """Import every part of ``PARTS`` and make the C functions a switch calls.

    What a first load would otherwise do while it runs (about 7 ms of CPU with
    bytecode on disk, most of it building classes), for a node that will load.
    """
    for name in PARTS:
        importlib.import_module(name)
    make_c_functions()


@record(eq=False)
class Prepared:
    """New versions built by ``prepare_loading``, not yet visible; pass to finish_loading."""

    versions: dict[str, Version]
    _built: dict[str, Built] = field(repr=False)
    _facades: dict[str, types.ModuleType] = field(repr=False)
    _expected: dict[str, Version | None] = field(repr=False)
    _finished: bool = field(default=False, repr=False)


class CodeServer:
    """One process's code server (Erlang's ``code_server``); see ``hotmesh.code``."""

    def __init__(self) -> None:
        self._roots: list[Root] = []
        self._world: dict[str, Entry] = {}
        self._facades: dict[str, types.ModuleType] = {}
        self._codefiles: dict[str, str] = {}  # vsn -> linecache key
        self._uses: dict[str, dict[str, str]] = {}  # vsn -> modules its body reads
        self._xref_index: XrefIndex | None = None  # made by the first load (see _xref)
        self._disk: dict[str, tuple[int, int, str]] = {}  # path -> (mtime_ns, size, hash)
        self._lock = threading.RLock()  # serialises loads, purges, deletes, reverts
        self._switch = threading.Lock()  # held only while publishing, never around user code
        self._counter = itertools.count(1)
        self._finder: ManagedFinder | None = None
        self._batch: Batch | None = None  # the prepare_loading running now (under _lock)
        # sys.modules as the last adoption scan saw it: a scan looks only at what changed.
        self._scanned: dict[str, types.ModuleType] = {}
        # Where each managed module's current source file is, by package and folder, so
        # a load finds the removed children of a package with one set difference per
        # folder instead of a check per child: package -> folder -> file name -> child.
        self._files: dict[str, tuple[str, str]] = {}  # module -> (folder, file name)
        self._kids: dict[str, dict[str, dict[str, str]]] = {}

    @property
    def _xref(self) -> XrefIndex:
        if self._xref_index is None:
            from hotmesh.code.xref_index import XrefIndex

            self._xref_index = XrefIndex()
        return self._xref_index

    # ----------------------------------------------------------------- roots
    def add_root(self, root: str | os.PathLike[str], *, allow_sticky: bool = False) -> None:
        """Manage a package prefix or a directory; adopt its modules already imported."""
        parsed = make_root(root, allow_sticky)
        with self._lock:
            self._roots = [r for r in self._roots if r.text != parsed.text] + [parsed]
            self._scanned = {}
            if self._finder is None:
                from hotmesh.code.finder import ManagedFinder

                self._finder = ManagedFinder(self)
                sys.meta_path.insert(0, self._finder)
            self._adopt_all()

    def roots(self) -> list[str]:
        """The configured roots (package prefixes and directory real paths)."""
        return [root.text for root in self._roots]

    def might_manage(self, name: str) -> bool:
        """Cheap pre-filter for the finder: a prefix matches, or any directory root."""
        return any(root.is_dir or root.covers(name, None) for root in self._roots)

    def manages(self, name: str, origin: str | None) -> bool:
        """Whether module ``name`` with source ``origin`` is managed (root, not sticky)."""
        root = next((r for r in self._roots if r.covers(name, origin)), None)
        if root is None:
            return False
        return root.allow_sticky or origin is None or not is_sticky(name, origin)

    def is_managed(self, mod: str) -> bool:
        """Whether ``mod`` lies under a root and is not sticky."""
        if mod in self._facades:
            return True
        module = sys.modules.get(mod)
        origin = getattr(module, "__file__", None) if module is not None else None
        if origin is not None and not _is_named_by_its_file(mod, module, origin):
            return False  # an alias of another module (or a copy an import hook made)
        if origin is None:
            spec = locate(mod)
            origin = spec.origin if spec is not None and spec.has_location else None
        return self.manages(mod, origin)

    def _managed_spec(self, mod: str) -> ModuleSpec:
        """The source spec of a managed module, or the reason it cannot be loaded."""
        spec = locate(mod)
        origin = spec.origin if spec is not None and spec.has_location else None
        root = next((r for r in self._roots if r.covers(mod, origin)), None)
        if origin is not None and is_sticky(mod, origin) and not (root and root.allow_sticky):
            raise StickyModule(
                f"{mod} is sticky (stdlib, site-packages or hotmesh: {origin}); add its root "
                f"with add_root(..., allow_sticky=True) to manage it"
            )
        if root is None:
            raise NotManaged(f"{mod} is not under a managed root (roots: {self.roots()})")
        if spec is None or not is_source(spec):
            raise LoadError(f"no Python source file found for {mod} on its path")
        return spec

    # -------------------------------------------------------------- adoption
    def _adopt_all(self) -> None:
        """Adopt managed modules that reached sys.modules without the finder.

        Only the entries added or replaced since the last scan are looked at
        (found by a set difference, at C speed), so a load does not cost a
        Python step per module of the process.
        """
        if sys.modules == self._scanned:  # the usual case: nothing imported since
            return
        now = dict(sys.modules)
        try:
            changed = list(now.items() - self._scanned.items())
        except TypeError:  # an unhashable object in sys.modules: look at every entry
            changed = list(now.items())
        self._scanned = now
        for name, module in changed:
            if module is None or name in self._facades:
                continue
            origin = getattr(module, "__file__", None)
            if (
                isinstance(origin, str)
                and origin.endswith(".py")
                and self.manages(name, origin)
                and _is_named_by_its_file(name, module, origin)
            ):
                self._adopt(name, module, origin)

    def _adopt(self, name: str, module: types.ModuleType, origin: str) -> None:
        """Make a module imported before its root was added the facade of version 1.

        The module object stays (everyone who imported it keeps working); its
        dict becomes version 1's namespace.
        """
        try:
            source: str | None = read_source(origin)
        except (OSError, SyntaxError, UnicodeDecodeError):
            source = None
        digest = source_hash(source) if source is not None else ""
        counter = next(self._counter)
        version = Version(
            name, make_vsn(digest, counter), digest, origin, time.time(), source, module.__dict__
        )
        with self._switch:
            self._facades[name] = module
            self._world.update(after_load(self._world, {name: version}))
        self._index({name: version})

    # ------------------------------------------------------------- importing
    def exec_for_import(self, facade: types.ModuleType) -> None:
        """The finder's loader: execute version 1 in the facade (or load_file on reload)."""
        name = facade.__name__
        if facade is self._facades.get(name):
            self.load_file(name)  # importlib.reload(facade) is a hotmesh load
            return
        spec = facade.__spec__
        path = spec.origin if spec is not None else None
        if path is None:
            raise ImportError(f"no source for {name}", name=name)
        source = read_source(path)
        from hotmesh.code.build import build_version

        built = build_version(
            name, source, path, facade, None, next(self._counter), translate=False, into=facade
        )
        with self._switch:
            if self._world.get(name, EMPTY)[0] is not None:
                raise ImportError(f"{name} was loaded concurrently by the code server", name=name)
            self._facades[name] = facade
            self._publish({name: built}, {name: facade})
        self._remember(built)

    # --------------------------------------------------------------- loading
    def load_file(self, mod: str, *, force: bool = False) -> Version:
        """Load ``mod`` from its source file and make it current (see hotmesh.code)."""
        return self.atomic_load([mod], force=force)[mod]

    def load_binary(
        self, mod: str, filename: str, source: str | types.CodeType, *, force: bool = False
    ) -> Version:
        """Load ``mod`` from a source string or code object (see hotmesh.code)."""
        with self._lock:
            self._adopt_all()
            if not self.is_managed(mod):
                self._managed_spec(mod)  # raises the precise reason
            check_loadable(mod, self._world.get(mod, EMPTY))
            spec = locate(mod) if mod not in self._facades else None
            prepared = self._prepare({mod: (filename, source, spec)}, force)
            return self.finish_loading(prepared)[mod]

    def atomic_load(self, mods: Iterable[str], *, force: bool = False) -> dict[str, Version]:
        """Load several modules all-or-nothing (Erlang's ``code:atomic_load/1``)."""
        with self._lock:
            prepared = self.prepare_loading(mods, force=force, _check_purged=True)
            return self.finish_loading(prepared)

    def prepare_loading(
        self, mods: Iterable[str], *, force: bool = False, _check_purged: bool = False
    ) -> Prepared:
        """Build new versions of ``mods`` off to the side (Erlang's ``prepare_loading/1``)."""
        names = list(mods)
        if len(set(names)) != len(names):
            raise CodeError(f"duplicated modules in {names}")
        with self._lock:
            self._adopt_all()
            sources: dict[str, tuple[str, str | types.CodeType, ModuleSpec | None]] = {}
            for mod in names:
                spec = self._managed_spec(mod)
                if _check_purged:
                    check_loadable(mod, self._world.get(mod, EMPTY))
                assert spec.origin is not None
                try:
                    sources[mod] = (spec.origin, read_source(spec.origin), spec)
                except (OSError, SyntaxError, UnicodeDecodeError) as exc:
                    raise LoadError(f"cannot read {spec.origin}: {exc}") from exc
            return self._prepare(sources, force)

    def _prepare(
        self,
        sources: dict[str, tuple[str, str | types.CodeType, ModuleSpec | None]],
        force: bool,
    ) -> Prepared:
        from hotmesh.code.batch import Batch
        from hotmesh.code.imports import BatchImports

        batch = Batch(threading.get_ident(), sources)
        imports = batch.imports = BatchImports(
            set(sources), self._build_for_import, self._claim, self._gone, self._gone_children
        )
        self._batch = batch
        imports.install()
        try:
            for mod in sorted(sources, key=lambda m: (m.count("."), m)):
                imports.view(mod)
                batch.hide_peers()
            batch.redirect_captured()
            if not force:
                self._check_references(batch.built)
        except BaseException:
            batch.forget_code()
            raise
        finally:
            imports.uninstall()
            self._batch = None
            batch.hide_peers()
            batch.imports = None
        versions = {mod: b.version for mod, b in batch.built.items()}
        return Prepared(versions, batch.built, batch.facades, batch.expected)

    def _build_peer(self, mod: str) -> types.ModuleType | None:
        """Build ``mod`` of the batch being prepared, once; its hidden module.

        While the body runs, the hidden module is returned as it is (partly
        executed), as the import system does with a module being imported.
        """
        batch = self._batch
        assert batch is not None
        if mod in batch.built:
            return batch.built[mod].module
        if mod in batch.hidden:
            return batch.hidden[mod]
        path, source, spec = batch.sources[mod]
        facade = self._facades.get(mod) or self._new_facade(mod, spec)
        previous = self._world.get(mod, EMPTY)[0]
        hidden = types.ModuleType(mod)
        hidden.__dict__.update(identity_of(facade))
        # A package's new body starts with its children bound, as its parent's
        # import of them left them; children of the batch bind when imported.
        hidden.__dict__.update(
            {c: m for c, m in self._children(mod).items() if f"{mod}.{c}" not in batch.sources}
        )
        batch.hidden[mod] = hidden
        from hotmesh.code.build import build_version

        try:
            built = build_version(
                mod, source, path, facade, previous, next(self._counter), hidden=hidden
            )
        finally:
            del batch.hidden[mod]
        batch.facades[mod] = facade
        batch.expected[mod] = previous
        batch.built[mod] = built
        return built.module

    def _build_for_import(self, mod: str) -> types.ModuleType:
        """_build_peer for an import statement: a failed import raises what it raised."""
        try:
            module = self._build_peer(mod)
        except LoadError as exc:
            if isinstance(exc.__cause__, ImportError):
                raise exc.__cause__ from None  # `try: import m / except ImportError` works
            raise
        if module is None:
            raise ImportError(f"{mod} is being prepared and has no module", name=mod)
        return module

    def _claim(self, mod: str) -> bool:
        """Add a managed module never loaded to the batch being prepared (when imported)."""
        batch = self._batch
        if batch is None or mod in self._facades or not self.might_manage(mod):
            return False
        try:
            spec = locate(mod)
        except (ImportError, ValueError):
            return False
        if not is_source(spec) or spec is None or not self.manages(mod, spec.origin):
            return False
        assert spec.origin is not None
        try:
            batch.sources[mod] = (spec.origin, read_source(spec.origin), spec)
        except (OSError, SyntaxError, UnicodeDecodeError):
            return False
        return True

    def _gone(self, mod: str) -> bool:
        """Whether a loaded managed module's source file is gone (removed from disk)."""
        if mod not in self._facades:
            return False
        batch = self._batch
        cache = batch.gone if batch is not None else {}
        found = cache.get(mod)
        if found is None:
            current = self._world.get(mod, EMPTY)[0]
            if current is None or current.path is None or not os.path.isabs(current.path):
                found = False  # deleted, or loaded from a binary: nothing on disk to miss
            elif self._still_there(current.path, batch):
                found = False  # its file is where it was loaded from: one listing per directory
            else:
                try:
                    spec = locate(mod)
                except (ImportError, ValueError):
                    spec = None
                found = spec is None or not is_source(spec)
            cache[mod] = found
        return found

    @staticmethod
    def _still_there(path: str, batch: Batch | None) -> bool:
        """Whether ``path`` exists, from one directory listing per batch (not a stat per file).

        Checking each child of a large package with the finder made every load
        cost O(modules managed) (bench/code.py --only scaling).
        """
        folder, name = os.path.split(path)
        return name in CodeServer._listing(folder, batch)

    @staticmethod
    def _listing(folder: str, batch: Batch | None) -> frozenset[str]:
        listings = batch.listings if batch is not None else {}
        names = listings.get(folder)
        if names is None:
            try:
                names = listings[folder] = frozenset(os.listdir(folder))
            except OSError:
                names = listings[folder] = frozenset()
        return names

    def _index(self, currents: dict[str, Version | None]) -> None:
        """Record where the new current versions' files are (``_files``, ``_kids``)."""
        for mod, version in currents.items():
            parent, _, child = mod.rpartition(".")
            before = self._files.pop(mod, None)
            if before is not None:
                self._kids.get(parent, {}).get(before[0], {}).pop(before[1], None)
            path = version.path if version is not None else None
            if path is not None and os.path.isabs(path):
                folder, name = os.path.split(path)
                self._files[mod] = (folder, name)
                self._kids.setdefault(parent, {}).setdefault(folder, {})[name] = child

    def _gone_children(self, package: str) -> frozenset[str]:
        """The children (short names) of ``package`` that are loaded but whose file is gone.

        One listing and one set difference per folder, whatever the number of
        children (a check per child made every load cost O(modules managed)).
        """
        batch = self._batch
        cache = batch.gone_children if batch is not None else {}
        found = cache.get(package)
        if found is None:
            gone = set()
            for folder, files in list(self._kids.get(package, {}).items()):
                for name in files.keys() - self._listing(folder, batch):
                    if self._gone(f"{package}.{files[name]}"):
                        gone.add(files[name])
            found = cache[package] = frozenset(gone)
        return found

    def _children(self, mod: str) -> dict[str, types.ModuleType]:
        """The child modules of package ``mod`` to bind in its namespace.

        Aliases (a module stored in sys.modules under a name other than its
        own) are not children, nor are deleted or removed managed modules.
        A module that is not a package has none (no scan of sys.modules).
        """
        module = self._facades.get(mod) or sys.modules.get(mod)
        if module is None or getattr(module, "__path__", None) is None:
            return {}
        prefix = mod + "."
        gone = self._gone_children(mod)
        found = {}
        for name, child in list(sys.modules.items()):
            if not name.startswith(prefix) or "." in name[len(prefix) :] or child is None:
                continue
            if getattr(child, "__name__", None) != name:
                continue
            short = name[len(prefix) :]
            if name in self._facades and (self._world.get(name, EMPTY)[0] is None or short in gone):
                continue
            found[short] = child
        return found

    def peer_spec(self, name: str) -> ModuleSpec | None:
        """A spec importing ``name``'s prepared version, for the thread preparing it.

        A module of the batch being prepared that the import system does not
        know yet (new in this batch) is imported by its peers as its hidden
        version module: nothing is loaded for real before finish_loading.
        """
        batch = self._batch
        if batch is None or batch.thread != threading.get_ident() or name not in batch.sources:
            return None
        from hotmesh.code.batch import PeerLoader

        return ModuleSpec(name, PeerLoader(self._build_peer, name))

    def _check_references(self, built: dict[str, Built]) -> None:
        problems = self._xref.for_load(self._world, {m: b.version for m, b in built.items()})
        if problems:
            listing = "\n".join(f"  {problem}" for problem in problems)
            raise XrefError(
                f"loading {', '.join(built)} would leave dangling references "
                f"(fix them, load the missing modules in the same atomic load, "
                f"or pass force=True):\n{listing}",
                problems,
            )

    def finish_loading(self, prepared: Prepared) -> dict[str, Version]:
        """Switch to the prepared versions, all at once (Erlang's ``finish_loading/1``).

        Raises NotPurged if a module's old slot is occupied, LoadError if a
        module's current version changed since prepare_loading; nothing changes.
        """
        with self._lock:
            if prepared._finished:
                raise CodeError("these prepared modules were already switched to")
            from hotmesh.code.suspend import Suspension

            suspension = Suspension.of(prepared.versions, prepared._facades, prepared._expected)

            def check() -> None:
                self._check_switchable(prepared)

            with self._suspended(suspension, check), self._switch:
                check()
                self._publish(prepared._built, prepared._facades)
                for mod, facade in prepared._facades.items():
                    self._facades[mod] = facade
            prepared._finished = True
            for b in prepared._built.values():
                self._remember(b)
            return dict(prepared.versions)

    @contextlib.contextmanager
    def _suspended(
        self, suspension: Suspension | None, check: Callable[[], None]
    ) -> Iterator[None]:
        """Run the switch in the body under Erlang's suspend, code_change, resume.

        With a suspension: ``check`` and the gates go up in one step, the hooks
        convert, the body switches, the waiting calls go in. If the conversion or
        the switch fails, the versions being left are shown again. Without one,
        the body just runs. See hotmesh.code.suspend.
        """
        if suspension is None:
            yield
            return
        with self._switch:
            check()
            suspension.begin()
        try:
            suspension.convert()
            yield
        except BaseException:
            with self._switch:
                suspension.abort()
            raise
        suspension.end()

    def _check_switchable(self, prepared: Prepared) -> None:
        """Refuse (NotPurged, LoadError) a switch that cannot happen; changes nothing."""
        for mod, version in prepared._expected.items():
            current = self._world.get(mod, EMPTY)[0]
            if current is not version:
                now = current.vsn if current else "nothing"
                raise LoadError(
                    f"{mod} changed since prepare_loading (current is now {now}); prepare again"
                )
        after_load(self._world, prepared.versions)

    # ------------------------------------------------------------ publishing
    def _new_facade(self, mod: str, spec: ModuleSpec | None) -> types.ModuleType:
        """The module object a never-loaded module will be known by."""
        from hotmesh.code.finder import ManagedLoader

        if spec is None:
            spec = ModuleSpec(mod, ManagedLoader(self, mod, None))
        else:
            spec.loader = ManagedLoader(self, mod, spec.origin)
        return importlib.util.module_from_spec(spec)

    def _publish(self, built: dict[str, Built], facades: dict[str, types.ModuleType]) -> None:
        """Make ``built`` current in one atomic step (caller holds ``_switch``)."""
        updates = after_load(self._world, {m: b.version for m, b in built.items()})
        switch = Switch()
        fresh = {m: facades[m] for m in built if sys.modules.get(m) is not facades[m]}
        for mod, b in built.items():
            self._carry_children(mod, b.version.namespace)
            switch.show(facades[mod], b.version.namespace)
        for mod, facade in fresh.items():
            parent, _, child = mod.rpartition(".")
            if parent in built:
                built[parent].version.namespace[child] = facade
            elif parent and sys.modules.get(parent) is not None:
                switch.update(sys.modules[parent].__dict__, {child: facade})
        if fresh:
            switch.update(sys.modules, fresh)
        switch.update(self._world, updates)
        switch.apply()
        self._index({m: b.version for m, b in built.items()})

    def _carry_children(self, mod: str, namespace: dict[str, Any]) -> None:
        """Keep ``pkg.sub`` reachable as an attribute of a package's new version."""
        for child, module in self._children(mod).items():
            namespace.setdefault(child, module)

    def _remember(self, b: Built) -> None:
        if b.code_filename is not None:
            self._codefiles[b.version.vsn] = b.code_filename

    def _forget(self, version: Version) -> None:
        self._uses.pop(version.vsn, None)
        self._xref.forget(version)
        codefile = self._codefiles.pop(version.vsn, None)
        if codefile is not None:
            linecache.cache.pop(codefile, None)

    # ------------------------------------------------------ delete & revert
    def delete(self, mod: str) -> None:
        """Make ``mod``'s current version old; qualified references then fail clearly."""
        with self._lock:
            self._adopt_all()
            with self._switch:
                updates = after_delete(self._world, mod)
                facade = self._facades[mod]
                switch = Switch()
                switch.show(facade, deleted_namespace(facade))
                switch.update(self._world, updates)
                switch.apply()
            self._index({mod: None})

    def revert(self, mods: Iterable[str]) -> None:
        """Atomically make each module's old version current again (hotmesh's airbag).

        The reverted version becomes old; a module without an old version (new
        in the load being reverted) is deleted. Raises CodeError, changing
        nothing, if a module has no current version. A version being left that
        defines ``__code_revert__`` converts state back with the module
        suspended (see hotmesh.code.suspend); LoadError if that fails.
        """
        names = list(dict.fromkeys(mods))
        with self._lock:
            with self._switch:
                after_revert(self._world, names)  # refuse before anything happens
                entries = {mod: self._world.get(mod, EMPTY) for mod in names}
            from hotmesh.code.suspend import Suspension

            suspension = Suspension.of_revert(entries, self._facades)
            with self._suspended(suspension, lambda: None), self._switch:
                self._switch_back(names)

    def _switch_back(self, names: list[str]) -> None:
        updates = after_revert(self._world, names)
        switch = Switch()
        for mod in names:
            facade = self._facades[mod]
            target = updates[mod][0]
            if target is None:
                switch.show(facade, deleted_namespace(facade))
            else:
                self._carry_children(mod, target.namespace)
                switch.show(facade, target.namespace)
        switch.update(self._world, updates)
        switch.apply()
        self._index({mod: updates[mod][0] for mod in names})

    # --------------------------------------------------------------- purging
    def check_old_code(self, mod: str) -> bool:
        """Whether ``mod`` has an old version (Erlang's ``erlang:check_old_code/1``)."""
        return self._world.get(mod, EMPTY)[1] is not None

    def check_process_code(self, thread_or_task: Any, mod: str) -> bool:
        """Whether a thread (Thread or ident) or asyncio task runs ``mod``'s old code."""
        from hotmesh.code import scan

        old = self._world.get(mod, EMPTY)[1]
        return old is not None and scan.target_runs(thread_or_task, old.namespace)

    def soft_purge(self, mod: str) -> bool:
        """Drop ``mod``'s old version unless a thread or task still runs it."""
        from hotmesh.code import scan

        with self._lock:
            old = self._world.get(mod, EMPTY)[1]
            if old is None:
                return True
            if scan.find_offenders(old.namespace):
                return False
            self._drop_old(mod)
            return True

    def purge(self, mod: str, *, timeout: float = 2.0) -> PurgeReport:
        """Drop ``mod``'s old version, stopping the threads and tasks that run it."""
        from hotmesh.code.purging import PurgeReport, stop_runners

        with self._lock:
            old = self._world.get(mod, EMPTY)[1]
            if old is None:
                return PurgeReport(mod, purged=False)
            report = stop_runners(mod, old.namespace, timeout)
            self._drop_old(mod)
            return report

    def _drop_old(self, mod: str) -> None:
        with self._switch:
            old = self._world.get(mod, EMPTY)[1]
            self._world.update(after_purge(self._world, mod))
        if old is not None:
            self._forget(old)

    # --------------------------------------------------------------- queries
    def current_version(self, mod: str) -> Version | None:
        """``mod``'s current version (a dict lookup)."""
        return self._world.get(mod, EMPTY)[0]

    def old_version(self, mod: str) -> Version | None:
        """``mod``'s old version (a dict lookup)."""
        return self._world.get(mod, EMPTY)[1]

    def loaded(self) -> list[str]:
        """Managed modules with a current version, sorted."""
        return sorted(mod for mod, entry in list(self._world.items()) if entry[0] is not None)

    def is_loaded(self, mod: str) -> bool:
        """Whether ``mod`` has a current version."""
        return self._world.get(mod, EMPTY)[0] is not None

    def which(self, mod: str) -> str | None:
        """The file ``mod``'s current version came from (load_binary: its filename)."""
        current = self._world.get(mod, EMPTY)[0]
        return current.path if current is not None else None

    def all_versions(self) -> dict[str, tuple[Version, Version | None]]:
        """Every loaded module's (current, old) pair."""
        return {
            mod: (entry[0], entry[1])
            for mod, entry in sorted(list(self._world.items()))
            if entry[0] is not None
        }

    def facade(self, mod: str) -> types.ModuleType | None:
        """The stable module object of ``mod`` (None if never loaded)."""
        return self._facades.get(mod)

    # ---------------------------------------------------------------- status
    def module_status(self, mod: str) -> Status:
        """Compare ``mod``'s current version with its source on disk (by sha256)."""
        current = self._world.get(mod, EMPTY)[0]
        if current is None:
            return "not_loaded"
        spec = locate(mod)
        if spec is None or not is_source(spec) or spec.origin is None:
            return "removed"
        digest = self._disk_hash(spec.origin)
        if digest is None:
            return "removed"
        return "loaded" if digest == current.hash else "modified"

    def modified_modules(self) -> list[str]:
        """Loaded modules whose source on disk differs from their current version."""
        return [mod for mod in self.loaded() if self.module_status(mod) == "modified"]

    def available_modules(self) -> list[str]:
        """Managed modules present on disk under the roots, loaded or not."""
        found: set[str] = set()
        for root in self._roots:
            for name in modules_under(root):
                spec = locate(name)
                if spec is not None and is_source(spec) and self.manages(name, spec.origin):
                    found.add(name)
        return sorted(found)

    def _disk_hash(self, path: str) -> str | None:
        """sha256 of a file's decoded source, recomputed only when stat changes."""
        try:
            stat = os.stat(path)
        except OSError:
            return None
        cached = self._disk.get(path)
        if cached is not None and cached[:2] == (stat.st_mtime_ns, stat.st_size):
            return cached[2]
        try:
            digest = source_hash(read_source(path))
        except (OSError, SyntaxError, UnicodeDecodeError):
            return None
        self._disk[path] = (stat.st_mtime_ns, stat.st_size, digest)
        return digest

    def dependents(self, mods: Iterable[str]) -> dict[str, str]:
        """Loaded modules to re-run with ``mods``: they bound their objects (module -> why)."""
        mods = list(mods)
        current = {
            mod: entry[0] for mod, entry in list(self._world.items()) if entry[0] is not None
        }
        known = set(current) | set(mods)
        # A source that names no managed package and imports nothing relatively
        # uses none at import time: it is not parsed.
        heads = frozenset(name.partition(".")[0] for name in known)
        uses: dict[str, dict[str, str]] = {}
        for mod, version in current.items():
            cached = self._uses.get(version.vsn)
            if cached is None:
                cached = {}
                if version.source is not None and may_import(version.source, heads):
                    package = bool(version.path and version.path.endswith("__init__.py"))
                    try:
                        cached = import_time_uses(mod, version.source, package, known)
                    except (SyntaxError, ValueError):
                        cached = {}
                self._uses[version.vsn] = cached
            uses[mod] = cached
        namespaces = {mod: version.namespace for mod, version in current.items()}
        return find_dependents(namespaces, mods, uses)

    def stale_references(self, mod: str) -> list[StaleReference]:
        """Places outside ``mod``'s old version still holding its functions and classes."""
        return self.stale_references_of([mod])[mod]

    def stale_references_of(self, mods: Iterable[str]) -> dict[str, list[StaleReference]]:
        """stale_references for several modules, in one pass of the garbage collector."""
        from hotmesh.code.stale import find_stale

        names = list(dict.fromkeys(mods))
        olds: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {}
        for mod in names:
            current, old = self._world.get(mod, EMPTY)
            if old is not None:
                olds[mod] = (old.namespace, current.namespace if current is not None else None)
        if not olds:
            return {mod: [] for mod in names}
        labels: dict[int, str] = {}
        for name, module in list(sys.modules.items()):
            namespace = getattr(module, "__dict__", None)
            if isinstance(namespace, dict):
                labels[id(namespace)] = name
        for name, (cur, previous) in list(self._world.items()):
            if cur is not None:
                labels[id(cur.namespace)] = name
            if previous is not None:
                labels[id(previous.namespace)] = f"{name} (old {previous.vsn})"
        found = find_stale(olds, labels)
        return {mod: found.get(mod, []) for mod in names}

    # ------------------------------------------------------------------ xref
    def xref(self, mods: Iterable[str]) -> list[Problem]:
        """Dangling references if ``mods`` were loaded from disk now (nothing executes)."""
        sources: dict[str, tuple[str, str]] = {}
        for mod in mods:
            spec = self._managed_spec(mod)
            assert spec.origin is not None
            sources[mod] = (spec.origin, read_source(spec.origin))
        try:
            return self._xref.for_sources(self._world, sources)
        except SyntaxError as exc:
            raise LoadError(f"cannot parse {exc.filename or 'a new source'}: {exc}") from exc

    # --------------------------------------------------------------- testing
    def reset(self) -> None:
        """Forget everything and uninstall the finder (for tests only)."""
        with self._lock:
            if self._finder is not None and self._finder in sys.meta_path:
                sys.meta_path.remove(self._finder)
            self._finder = None
            for mod, facade in self._facades.items():
                if sys.modules.get(mod) is facade:
                    del sys.modules[mod]
            for codefile in self._codefiles.values():
                linecache.cache.pop(codefile, None)
            self.__init__()  # type: ignore[misc]


def _is_named_by_its_file(name: str, module: Any, origin: str) -> bool:
    """Whether ``module``, found in sys.modules as ``name``, is the module ``name``'s file.

    Not when it is an alias (``sys.modules["p.compat"] = p.impl``) or a module an
    import hook filled by copying another's attributes, ``__file__`` included
    (toolz's ``tlz``): such entries are never managed.
    """
    if getattr(module, "__name__", None) != name:
        return False
    try:
        spec = locate(name)
    except (ImportError, ValueError):
        return False
    if spec is None or not spec.origin:
        return False
    return os.path.realpath(spec.origin) == os.path.realpath(origin)
