"""Building one version: compile, execute in a fresh namespace, carry state, run the hook.

Executes user code (the module body and ``__upgrade__``) but publishes
nothing: the result becomes visible only when the server switches to it.
"""

from __future__ import annotations

import contextlib
import gc
import importlib._bootstrap as _bootstrap
import linecache
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from hotmesh._errors import LoadError
from hotmesh.code.facade import identity_of
from hotmesh.code.versions import Version, make_vsn, source_hash

T = TypeVar("T")

KEPT = "__hotmesh_kept__"

_local = threading.local()


@dataclass(eq=False)
class Built:
    """A version executed off to the side, not yet current."""

    version: Version
    module: types.ModuleType | None  # the hidden module the body ran in (None: a first import)
    code_filename: str | None


def keep(name: str, factory: Callable[[], T]) -> T:
    """Carry an object into the next version by reference (call it in a module body).

    Returns the object the previous version kept under ``name`` when there is
    one, else ``factory()``; either way the object is recorded so that the next
    version gets it too. Erlang has no equivalent: its state lives in processes
    and moves through ``code_change``; here module-level state is carried
    explicitly, so the same dict or pool lives on across upgrades.

    Example: ``SESSIONS = hotmesh.code.keep("SESSIONS", dict)``.
    """
    if not isinstance(name, str):
        raise TypeError(f"keep: name must be a str, not {name!r:.60}")
    if not callable(factory):
        raise TypeError(
            f"keep: factory must be callable (called with no argument), not {factory!r:.60}"
        )
    namespace = sys._getframe(1).f_globals
    previous = namespace
    for build in reversed(getattr(_local, "builds", ())):
        if build[0] is namespace:
            previous = build[1]
            break
    kept = namespace.setdefault(KEPT, {})
    if previous is not None:
        carried = previous.get(KEPT, {})
        if name in carried:
            kept[name] = carried[name]
            return cast(T, carried[name])
    value = factory()
    kept[name] = value
    return value


@contextlib.contextmanager
def _building(namespace: dict[str, Any], previous: dict[str, Any] | None) -> Iterator[None]:
    builds = getattr(_local, "builds", None)
    if builds is None:
        builds = _local.builds = []
    builds.append((namespace, previous))
    try:
        yield
    finally:
        builds.pop()


@contextlib.contextmanager
def _redirected(name: str, module: types.ModuleType) -> Iterator[None]:
    """Make ``sys.modules[name]`` the version module while its body runs.

    dataclasses and typing resolve names through ``sys.modules[cls.__module__]``
    while the body runs. The import lock of ``name`` makes concurrent
    ``importlib.import_module(name)`` wait instead of seeing a half-built module.
    """
    manager = getattr(_bootstrap, "_ModuleLockManager", None)
    lock = manager(name) if manager is not None else contextlib.nullcontext()
    with lock:
        prior = sys.modules.get(name)
        spec = module.__dict__.get("__spec__")
        initializing = getattr(spec, "_initializing", False)
        if spec is not None:
            spec._initializing = True
        sys.modules[name] = module
        try:
            yield
        finally:
            if prior is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = prior
            if spec is not None:
                spec._initializing = initializing


def compile_source(source: str, filename: str) -> types.CodeType:
    """Compile module source; a SyntaxError becomes LoadError."""
    try:
        return compile(source, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        raise LoadError(f"cannot compile {filename}: {exc}") from exc


def build_version(
    name: str,
    source: str | types.CodeType,
    path: str | None,
    facade: types.ModuleType,
    previous: Version | None,
    counter: int,
    *,
    translate: bool = True,
    into: types.ModuleType | None = None,
    hidden: types.ModuleType | None = None,
) -> Built:
    """Compile and execute a new version of ``name`` in a fresh namespace.

    The source is compiled under the file name ``<path>@<vsn>`` and its lines
    are kept in linecache, so tracebacks and ``inspect.getsource`` show the
    code each version really runs even after the file changed. The new
    version's ``__upgrade__(old_namespace, old_version)`` runs after the body
    when there is a previous version. With ``into`` (a first import), the body
    runs in that module's own dict, which is already in sys.modules; with
    ``hidden``, in that module (made by the caller so that imports of the
    module while its body runs find it), else in a new module.

    Raises LoadError (when ``translate``; else the original exception) if the
    body or the hook fails; nothing outside the new namespace changed, except
    what the user code itself did (and objects it carried with keep()).
    """
    digest = source_hash(source)
    vsn = make_vsn(digest, counter)
    code_filename: str | None = None
    if isinstance(source, str):
        code_filename = f"{path or '<binary ' + name + '>'}@{vsn}"
        code = compile_source(source, code_filename)
    else:
        code = source
    module = into if into is not None else hidden or types.ModuleType(name)
    namespace = module.__dict__
    if into is None:
        namespace.update(identity_of(facade))
    if path is not None:
        namespace["__file__"] = path
    if code_filename is not None and isinstance(source, str):
        lines = source.splitlines(keepends=True)
        linecache.cache[code_filename] = (len(source), None, lines, code_filename)
    where = "module body"
    try:
        redirect = _redirected(name, module) if into is None else contextlib.nullcontext()
        with redirect, _building(namespace, previous.namespace if previous is not None else None):
            exec(code, namespace)
        hook = namespace.get("__upgrade__")
        if previous is not None and callable(hook):
            where = "__upgrade__ hook"
            hook(previous.namespace, previous)
        del redirect
    except BaseException as exc:
        if code_filename is not None:
            linecache.cache.pop(code_filename, None)
        if not translate or not isinstance(exc, Exception):
            raise
        raise LoadError(
            f"loading {name} failed in its {where}: {type(exc).__name__}: {exc}"
        ) from exc
    version = Version(
        module=name,
        vsn=vsn,
        hash=digest,
        path=path,
        loaded_at=time.time(),
        source=source if isinstance(source, str) else None,
        namespace=namespace,
    )
    # The caller checks whether code kept the module (THIS = sys.modules[__name__],
    # an import by a module of the same batch, a concurrent import).
    return Built(version, module if into is None else None, code_filename)


def redirect_references(pairs: dict[int, tuple[Any, types.ModuleType]]) -> None:
    """Rebind dict values that captured a hidden version module to its facade.

    A body doing ``THIS = sys.modules[__name__]``, or a concurrent ``import``
    that returned while the body ran, holds the hidden module; one garbage
    collector pass finds such bindings and points them at the facade.
    """
    if not pairs:
        return
    hidden = [pair[0] for pair in pairs.values()]
    for referrer in gc.get_referrers(*hidden):
        if isinstance(referrer, dict):
            redirect_in(referrer, pairs)


def redirect_in(namespace: dict[Any, Any], pairs: dict[int, tuple[Any, types.ModuleType]]) -> None:
    """Rebind the values of ``namespace`` that are a hidden module (or proxy) to its facade."""
    for key, value in list(namespace.items()):
        pair = pairs.get(id(value))
        if pair is not None and value is pair[0]:
            namespace[key] = pair[1]
