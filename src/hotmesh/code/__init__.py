"""The code server: Erlang's ``code`` module for Python modules (loads and executes code).

Managed modules (pure-Python modules under the configured roots) have at most
two versions loaded, current and old. Each version executes in its own fresh
namespace; the module object programs imported (the *facade*) stays the same
object forever and mirrors the current version. So, as in Erlang:

- a qualified reference (``import m; m.f()``) reaches the current version,
  like an external call ``m:f()``;
- code already running finishes in its own version, and its unqualified calls
  stay there, like local calls;
- ``from m import f``, stored callbacks and instances of old classes keep the
  old version, like funs (``stale_references`` lists them).

All functions below act on one process-wide server. Names match Erlang's
``code`` module where the semantics match; each docstring says how. Like
Erlang's ``badarg``, an argument of the wrong type (``is_loaded(23)``) raises
TypeError and changes nothing.
"""

from __future__ import annotations

import os
import threading
import types
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from hotmesh._lazy import lazy_names
from hotmesh.code import args

if TYPE_CHECKING:
    from hotmesh.code.build import keep
    from hotmesh.code.purging import PurgeReport
    from hotmesh.code.scan import Offender
    from hotmesh.code.server import CodeServer, Prepared, Status
    from hotmesh.code.stale import StaleReference
    from hotmesh.code.versions import Version
    from hotmesh.code.xref_source import Problem

__all__ = [
    "CodeServer",
    "Offender",
    "Prepared",
    "Problem",
    "PurgeReport",
    "StaleReference",
    "Status",
    "Version",
    "add_root",
    "all_versions",
    "atomic_load",
    "available_modules",
    "check_old_code",
    "check_process_code",
    "current_version",
    "delete",
    "dependents",
    "finish_loading",
    "is_loaded",
    "is_managed",
    "keep",
    "load_binary",
    "load_file",
    "loaded",
    "modified_modules",
    "module_status",
    "old_version",
    "prepare_loading",
    "purge",
    "revert",
    "roots",
    "soft_purge",
    "stale_references",
    "stale_references_of",
    "which",
    "xref",
]

_LAZY: dict[str, tuple[str, str | None]] = {
    "CodeServer": ("hotmesh.code.server", "CodeServer"),
    "Prepared": ("hotmesh.code.server", "Prepared"),
    "Status": ("hotmesh.code.server", "Status"),
    "Version": ("hotmesh.code.versions", "Version"),
    "Offender": ("hotmesh.code.scan", "Offender"),
    "Problem": ("hotmesh.code.xref_source", "Problem"),
    "PurgeReport": ("hotmesh.code.purging", "PurgeReport"),
    "StaleReference": ("hotmesh.code.stale", "StaleReference"),
    "keep": ("hotmesh.code.build", "keep"),
    "scan": ("hotmesh.code.scan", None),
}
"""Names imported on first use (PEP 562): what only loads, purges, scans and
checks need stays unloaded in a node that never loads a module."""

__getattr__, __dir__ = lazy_names("hotmesh.code", _LAZY, globals())


_made: CodeServer | None = None
_making = threading.Lock()


def _server() -> CodeServer:
    """The process's code server, made at first use.

    A node that manages no code (no root, no release) asks only which
    modules it manages and runs (none): it never imports the server, its
    roots, facades and dependents checks, nor sysconfig.
    """
    global _made
    server = _made
    if server is None:
        from hotmesh.code.server import CodeServer

        with _making:
            if _made is None:
                _made = CodeServer()
            server = _made
    return server


def add_root(root: str | os.PathLike[str], *, allow_sticky: bool = False) -> None:
    """Manage the modules under ``root``: a package prefix or a directory.

    ``"myapp"`` manages myapp and its submodules; a directory (a PathLike, or a
    string naming an existing directory) manages the modules whose source
    file lies under it. Managed modules already imported are adopted now:
    their dict becomes version 1 behind a facade. Modules in the stdlib,
    site-packages or hotmesh are sticky (Erlang's sticky directories) and stay
    unmanaged unless ``allow_sticky=True``.
    """
    if not isinstance(root, str | os.PathLike):
        raise TypeError(f"root must be a package prefix (str) or a directory, not {root!r:.60}")
    _server().add_root(root, allow_sticky=args.flag(allow_sticky, "allow_sticky"))


def roots() -> list[str]:
    """The configured roots (package prefixes, and directories as real paths)."""
    return [] if _made is None else _made.roots()


def is_managed(mod: str) -> bool:
    """Whether module ``mod`` lies under a root and is not sticky."""
    return _server().is_managed(args.module_name(mod))


def current_version(mod: str) -> Version | None:
    """``mod``'s current version, or None (a dict lookup: cheap enough per message)."""
    return _server().current_version(args.module_name(mod))


def old_version(mod: str) -> Version | None:
    """``mod``'s old version, or None (a dict lookup)."""
    return _server().old_version(args.module_name(mod))


def load_file(mod: str, *, force: bool = False) -> Version:
    """Load ``mod`` from the source file found on its path and make it current.

    Erlang's ``code:load_file/1``. The new version is compiled and executed in
    a fresh namespace (with ``keep`` carrying state and ``__upgrade__`` run
    after the body), checked by xref unless ``force``, then made current in
    one atomic step; the previous current becomes old. A new version defining
    ``__code_change__`` converts kept state just before that step, with the
    module suspended (see finish_loading). A module never loaded before is
    loaded as new (facade installed in sys.modules and its package).

    Raises:
        NotPurged: the old slot is occupied (nothing ran, nothing changed).
        LoadError: syntax error, exception in the body or the hook, no source;
            XrefError (a LoadError) for dangling references. Nothing changed:
            the module keeps answering with the version it had.
        StickyModule, NotManaged: ``mod`` is not a managed module.
    """
    return _server().load_file(args.module_name(mod), force=args.flag(force, "force"))


def load_binary(
    mod: str, filename: str, source: str | types.CodeType, *, force: bool = False
) -> Version:
    """Load ``mod`` from source text (or a code object) that is not on disk.

    Erlang's ``code:load_binary/3``, except that it never purges first: like
    load_file it refuses with NotPurged while an old version is loaded.
    ``filename`` is recorded (``which`` returns it) and names the code in
    tracebacks. Same errors as load_file.
    """
    if not isinstance(source, str | types.CodeType):
        raise TypeError(f"source must be a str or a code object, not {source!r:.60}")
    return _server().load_binary(
        args.module_name(mod),
        args.text(filename, "filename"),
        source,
        force=args.flag(force, "force"),
    )


def atomic_load(mods: Iterable[str], *, force: bool = False) -> dict[str, Version]:
    """Load several modules from disk, all or nothing (Erlang's ``code:atomic_load/1``).

    Every module is built and checked first; then all switch in one atomic
    step. Any failure (NotPurged, LoadError, XrefError, ...) changes nothing.
    """
    return _server().atomic_load(args.module_names(mods), force=args.flag(force, "force"))


def prepare_loading(mods: Iterable[str], *, force: bool = False) -> Prepared:
    """Do all the heavy work of loading ``mods`` with no visible effect.

    Erlang's ``code:prepare_loading/1``: read, compile, execute the bodies
    into fresh namespaces, run ``__upgrade__`` hooks and xref. An occupied old
    slot is not an error yet (purge it before finish_loading).
    """
    return _server().prepare_loading(args.module_names(mods), force=args.flag(force, "force"))


def finish_loading(prepared: Prepared) -> dict[str, Version]:
    """Switch to prepared versions all at once (Erlang's ``code:finish_loading/1``).

    Fails with no effect (NotPurged, or LoadError when a module's current
    version changed since prepare_loading). A new version defining
    ``__code_change__(old_namespace, old_version)`` converts kept state here,
    with its module suspended (Erlang's suspend, code_change, resume; see
    ``hotmesh.code.suspend``): LoadError, nothing changed, if the old code
    does not drain in ``suspend.TIMEOUT`` seconds or the hook raises.
    """
    from hotmesh.code.server import Prepared

    if not isinstance(prepared, Prepared):
        raise TypeError(f"expected what prepare_loading returned, not {prepared!r:.60}")
    return _server().finish_loading(prepared)


def soft_purge(mod: str) -> bool:
    """Drop ``mod``'s old version unless some thread or asyncio task still runs it.

    Erlang's ``code:soft_purge/1``: True when dropped or there was no old
    version; False (nothing changes) when a thread's stack, an asyncio task's
    await chain, or a generator, coroutine or async generator of the old
    version suspended anywhere (started or not, not finished) has a frame
    executing old-version code.
    """
    return _server().soft_purge(args.module_name(mod))


def purge(mod: str, *, timeout: float = 2.0) -> PurgeReport:
    """Drop ``mod``'s old version, stopping the threads and tasks still running it.

    Erlang's ``code:purge/1`` kills processes; Python cannot kill a thread, so
    suspended generators and coroutines of the old version are closed (here,
    at once), tasks are cancelled (in their own loop's thread) and threads get
    ``hotmesh.CodePurged`` raised in them, then purge waits up to ``timeout``
    seconds for them to leave old code. A thread blocked in a C call (a lock,
    a socket, ``time.sleep``) sees the exception only when the call returns;
    code catching BaseException or CancelledError can refuse to stop. Those
    are reported as ``lingering``. The old version is dropped in all cases.
    """
    return _server().purge(args.module_name(mod), timeout=args.seconds(timeout, "timeout"))


def check_old_code(mod: str) -> bool:
    """Whether ``mod`` has an old version (Erlang's ``erlang:check_old_code/1``)."""
    return _server().check_old_code(args.module_name(mod))


def check_process_code(thread_or_task: Any, mod: str) -> bool:
    """Whether a thread, asyncio task or generator executes ``mod``'s old code.

    Erlang's ``erlang:check_process_code/2``. ``thread_or_task`` is a Thread,
    a thread ident, an asyncio Task, or a generator, coroutine or async
    generator: true when a frame of its stack, await chain or yield-from chain
    (suspended frames included) runs the old version. Like Erlang, references
    held as values (Erlang funs, here from-imports and callbacks) do not count.
    """
    from hotmesh.code import scan

    scan.check_target(thread_or_task)
    return _server().check_process_code(thread_or_task, args.module_name(mod))


def delete(mod: str) -> None:
    """Make ``mod``'s current version old, leaving no current version.

    Erlang's ``code:delete/1``. Code running it finishes; new qualified
    references (``m.f``) fail with an AttributeError naming the deleted module.
    Raises NotPurged if an old version exists, CodeError if nothing is current.
    """
    _server().delete(args.module_name(mod))


def revert(mods: Iterable[str]) -> None:
    """Atomically make each module's old version current again (hotmesh's airbag).

    The reverted version becomes old; a module with no old version (new in
    the load being reverted) is deleted. Raises CodeError, changing nothing,
    if any module has no current version. A reverted version that defines
    ``__code_revert__(old_namespace, old_version)`` converts state back with
    the module suspended, as ``__code_change__`` does (LoadError, nothing
    changed, if that fails).
    """
    _server().revert(args.module_names(mods))


def loaded() -> list[str]:
    """Managed modules with a current version (Erlang's ``code:all_loaded/0``)."""
    return [] if _made is None else _made.loaded()


def which(mod: str) -> str | None:
    """The file ``mod``'s current version came from, or None (``code:which/1``)."""
    return _server().which(args.module_name(mod))


def is_loaded(mod: str) -> bool:
    """Whether ``mod`` has a current version (``code:is_loaded/1``)."""
    return _server().is_loaded(args.module_name(mod))


def all_versions() -> dict[str, tuple[Version, Version | None]]:
    """Every loaded module's (current, old) versions."""
    return {} if _made is None else _made.all_versions()


def module_status(mod: str) -> Status:
    """``not_loaded``, ``loaded``, ``modified`` or ``removed`` (``code:module_status/1``).

    Compares the sha256 of the source file load_file would read with the
    current version's hash (Erlang compares the beam's MD5).
    """
    return _server().module_status(args.module_name(mod))


def modified_modules() -> list[str]:
    """Loaded modules whose source on disk changed (``code:modified_modules/0``)."""
    return [] if _made is None else _made.modified_modules()


def available_modules() -> list[str]:
    """Managed modules present on disk under the roots, loaded or not."""
    return [] if _made is None else _made.available_modules()


def xref(mods: Iterable[str]) -> list[Problem]:
    """The dangling references loading ``mods`` from disk would leave (executes nothing).

    Parses the new sources and the current versions of the other managed
    modules; every ``m.f`` on an imported managed module and every
    ``from m import f`` must resolve in the code that would be current.
    """
    return _server().xref(args.module_names(mods))


def dependents(mods: Iterable[str]) -> dict[str, str]:
    """The loaded modules that must run again when ``mods`` are loaded (or removed).

    A module whose body bound objects of a module in ``mods`` (``from m import
    f``, ``from .m import *``, a subclass, a table or registry holding them,
    instances of its classes) keeps the old objects unless it runs again; and
    a module in ``mods`` whose containers hold another module's objects (a
    registry that module filled) starts empty, so that module runs again too.
    Returns module -> the first such binding found, for the closure of both
    rules. Found from the objects the current namespaces hold (any form of
    binding counts) and, for constants, from the source: names imported from
    a module or read from it while the body runs. ``upgrade_node`` adds these
    modules to its batch. A
    module whose current version sets ``__hotmesh_rerun__ = False`` is listed
    like any other: the caller decides (``upgrade_node`` refuses).
    """
    return _server().dependents(args.module_names(mods))


def stale_references(mod: str) -> list[StaleReference]:
    """Places still holding functions, classes or instances of ``mod``'s old version.

    Found through the garbage collector: from-import bindings and aliases in
    other modules, closures, bound methods, partials, subclasses, instances.
    """
    return _server().stale_references(args.module_name(mod))


def stale_references_of(mods: Iterable[str]) -> dict[str, list[StaleReference]]:
    """``stale_references`` of several modules: module -> its list, in one gc pass.

    The garbage collector's search walks the whole heap whatever it looks for,
    so asking for a batch at once costs about what asking for one module does.
    Old versions of ``mods`` holding each other's objects are not listed (they
    are purged together).
    """
    return _server().stale_references_of(args.module_names(mods))


def _reset() -> None:
    """Forget every module and root and uninstall the finder (tests only)."""
    if _made is not None:
        _made.reset()
