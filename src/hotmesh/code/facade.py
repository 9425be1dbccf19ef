"""The stable module object programs import, pointed at the current version's namespace (no I/O).

A facade is an ordinary module object that stays in ``sys.modules`` forever.
Switching versions re-points its ``__dict__`` (the ``md_dict`` field CPython
exposes through ``ModuleType.__dictoffset__``) at the new version's namespace.
So ``m.f`` is a plain module attribute read (same speed, same interpreter
specialisation), ``m.X = 1`` writes into the current version, names the
version rebinds at run time (``global counter``) are live, and ``vars(m)`` is
the current namespace. One :class:`Switch` applies the re-pointing of several
facades and any number of dict updates inside a single C-level call, so
under the GIL no thread observes half of a multi-module switch.

Requires CPython with a GIL: on a free-threaded build the batch is not atomic.
"""

from __future__ import annotations

import collections
import gc
import itertools
import operator
import types
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import ctypes

# Attributes that describe the module object itself rather than its code.
IDENTITY = (
    "__name__",
    "__spec__",
    "__loader__",
    "__file__",
    "__cached__",
    "__package__",
    "__path__",
)

_DICT_OFFSET = types.ModuleType.__dictoffset__
# The C functions a switch calls, made by the first ``show`` (``make_c_functions``):
# ctypes is loaded only once a module is switched, not by every node's start.
_POINTER = 0
_memmove: Any = None
_incref: Any = None
_decref: Any = None


def make_c_functions() -> None:
    """Make the C functions a switch uses (once, before any switch starts)."""
    global _POINTER, _memmove, _incref, _decref
    if _decref is not None:
        return
    import ctypes

    _POINTER = ctypes.sizeof(ctypes.c_void_p)
    # memmove as a "Python API" function: the call keeps the GIL, unlike ctypes.memmove.
    _memmove = ctypes.PYFUNCTYPE(
        ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t
    )(cast(int, ctypes.cast(ctypes.memmove, ctypes.c_void_p).value))
    _incref = ctypes.pythonapi.Py_IncRef
    _incref.argtypes = [ctypes.py_object]
    _incref.restype = None
    decref = ctypes.pythonapi.Py_DecRef
    decref.argtypes = [ctypes.py_object]
    decref.restype = None
    _decref = decref  # last: its presence says every function is ready


class Switch:
    """A batch of facade re-pointings and dict updates, applied in one C call."""

    def __init__(self) -> None:
        self._calls: list[tuple[Any, ...]] = []
        self._sources: list[ctypes.c_void_p] = []
        self._shown: list[tuple[types.ModuleType, dict[str, Any]]] = []
        self._updates: list[tuple[dict[Any, Any], dict[Any, Any]]] = []

    def show(self, facade: types.ModuleType, namespace: dict[str, Any]) -> None:
        """Make ``facade.__dict__`` be ``namespace`` when the batch applies."""
        if facade.__dict__ is namespace:
            return
        make_c_functions()
        if any(shown is facade for shown, _namespace in self._shown):
            # Two writes to one md_dict would leak one namespace and over-release the other.
            raise ValueError(f"module {facade.__name__} is shown twice in one switch")
        self._shown.append((facade, namespace))
        self._calls.append(_repoint(facade, namespace, self._sources))

    def update(self, target: dict[Any, Any], values: dict[Any, Any]) -> None:
        """Apply ``target.update(values)`` in the same atomic step."""
        self._updates.append((target, values))
        self._calls.append((target.update, values))

    def apply(self) -> None:
        """Apply everything at once; no Python code runs in between.

        All or nothing: if a step fails (a MemoryError), the steps already
        applied are undone and the exception propagates.
        """
        released = [facade.__dict__ for facade, _namespace in self._shown]
        # The values the updates replace stay referenced here until the batch is
        # over: dropping a last reference inside it could run a finalizer, i.e.
        # Python code, i.e. a thread switch in the middle of the switch.
        prior = [
            (
                target,
                {k: target[k] for k in values if k in target},
                [k for k in values if k not in target],
            )
            for target, values in self._updates
        ]
        for _facade, namespace in self._shown:
            _incref(namespace)  # the facade's new reference
        # One C-level iteration: no bytecode boundary, so no thread switch. The
        # collector stays off so that no finalizer (Python code) runs inside it.
        collecting = gc.isenabled()
        gc.disable()
        try:
            collections.deque(itertools.starmap(operator.call, self._calls), maxlen=0)
        except BaseException:
            self._undo(released, prior)
            raise
        finally:
            if collecting:
                gc.enable()
            self._calls.clear()
            self._sources.clear()
        for namespace in released:
            _decref(namespace)  # the reference the facade held
        self._shown.clear()
        self._updates.clear()

    def _undo(
        self,
        released: list[dict[str, Any]],
        prior: list[tuple[dict[Any, Any], dict[Any, Any], list[Any]]],
    ) -> None:
        """Put back what a failed apply changed, with the reference counts it had."""
        sources: list[ctypes.c_void_p] = []
        for (facade, namespace), previous in zip(self._shown, released, strict=True):
            if facade.__dict__ is namespace:
                call, *args = _repoint(facade, previous, sources)
                call(*args)
            _decref(namespace)  # the reference taken for the facade, never handed over
        for target, values, added in prior:
            # dict's own methods, whatever the target overrides; the keys are
            # still present, so replacing their values allocates nothing.
            dict.update(target, values)
            for key in added:
                dict.pop(target, key, None)
        self._shown.clear()
        self._updates.clear()


def _repoint(
    facade: types.ModuleType, namespace: dict[str, Any], keep: list[ctypes.c_void_p]
) -> tuple[Any, ...]:
    """The call writing ``namespace``'s address into ``facade``'s ``md_dict`` field.

    Moves no reference: the caller accounts for them. The pointer's buffer is
    appended to ``keep``, which must outlive the call.
    """
    import ctypes

    source = ctypes.c_void_p(id(namespace))
    keep.append(source)
    return (_memmove, id(facade) + _DICT_OFFSET, ctypes.addressof(source), _POINTER)


def identity_of(facade: types.ModuleType) -> dict[str, Any]:
    """The facade's module-identity attributes, to seed a version namespace."""
    d = facade.__dict__
    return {key: d[key] for key in IDENTITY if key in d}


def deleted_namespace(facade: types.ModuleType) -> dict[str, Any]:
    """What a deleted module shows: its identity and a ``__getattr__`` that fails clearly."""
    name = facade.__name__

    def __getattr__(attr: str) -> Any:
        raise AttributeError(
            f"module {name!r} was deleted by the code server (hotmesh.code.delete), "
            f"so {name}.{attr} no longer resolves; load it again with "
            f"hotmesh.code.load_file({name!r}) after purging"
        )

    contents = identity_of(facade)
    contents["__getattr__"] = __getattr__
    return contents
