"""Finding what still holds objects of an old version, through the garbage collector (no I/O).

Erlang's analogue is a fun pointing at old code: it keeps working until the
purge and then fails with ``badfun``. Here such references keep running the old
version forever, so the code server lists them for the engineer to fix.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StaleReference:
    """One place holding an object of an old version.

    ``kind`` is ``binding`` (a name in a module namespace: a from-import, an
    alias), ``closure``, ``bound method``, ``partial``, ``instances`` (live
    instances of an old class, ``name`` is the count), ``subclass`` or
    ``container``; ``holder`` names the module, class or container type;
    ``target`` is the old object's qualified name.
    """

    kind: str
    holder: str
    name: str | None
    target: str

    def __str__(self) -> str:
        where = (
            f"{self.holder}.{self.name}" if self.name and self.kind == "binding" else self.holder
        )
        extra = f" ({self.name})" if self.name and self.kind != "binding" else ""
        return f"{self.kind}: {where} holds old {self.target}{extra}"


_MAX_ITEMS = 5_000  # per container: a big data table is not followed to its end
_CONTAINERS = (dict, list, tuple, set, frozenset)


class _OldVersion:
    """The functions and classes an old version defined, and what holds them inside it.

    Found from its namespace and through what its values hold: class bodies,
    the closure cells, ``__dict__`` and ``__wrapped__`` of functions (a class or
    function a decorator wrapped is often kept only there: markdown's
    ``@deprecated(...) class C`` binds a wrapper function whose closure holds
    the class), static and class methods, properties, partials, and the
    containers of its namespace. A function defined elsewhere that wraps one of
    its objects (that decorator's wrapper) is one of its objects too: a module
    that bound it holds old code. Objects the current version also holds (kept
    state, re-exports) are not old. Those holders are the version's own: they
    go with it at the purge, so they are not stale references.
    """

    def __init__(self, namespace: dict[str, Any], current: dict[str, Any] | None) -> None:
        self.objects: list[Any] = []
        self.internal: set[int] = {id(namespace)}
        # Everything the walk met: where references to its objects are counted
        # before the heap is searched (find_stale).
        self.met: list[Any] = [namespace]
        name = namespace.get("__name__")
        shared = _reach(list(current.values()), name) if current is not None else set()
        seen: set[int] = set()
        stack = [
            value
            for key, value in list(namespace.items())
            if current is None or current.get(key) is not value
        ]
        foreign: list[types.FunctionType] = []
        while stack:
            value = stack.pop()
            if id(value) in seen or id(value) in shared:
                continue
            seen.add(id(value))
            self.met.append(value)
            if isinstance(value, types.FunctionType):
                if value.__globals__ is namespace:
                    self._function(value)
                else:
                    foreign.append(value)
            elif isinstance(value, type):
                if value.__module__ != name or not _defined_in(value, namespace):
                    continue
                self.objects.append(value)
                self.met += gc.get_referents(value)  # its dict, __mro__, __bases__, base
                self.internal.update(id(d) for d in gc.get_referents(value.__dict__))
                self.internal.update(id(v) for v in vars(value).values())
            elif isinstance(value, _CONTAINERS):
                self.internal.add(id(value))
            stack.extend(_held(value, name))
        # Wrappers of its objects, outermost last: repeat while one more is found.
        mine = {id(obj) for obj in self.objects}
        grew = True
        while grew:
            grew = False
            for fn in foreign:
                if id(fn) not in mine and any(id(v) in mine for v in _held(fn, name)):
                    self._function(fn)
                    mine.add(id(fn))
                    grew = True

    def _function(self, fn: types.FunctionType) -> None:
        self.objects.append(fn)
        self.met += (*(fn.__closure__ or ()), fn.__defaults__, fn.__dict__)
        self.internal.update(id(cell) for cell in fn.__closure__ or ())
        self.internal.update((id(fn.__defaults__), id(fn.__dict__)))


def _defined_in(cls: type, namespace: dict[str, Any]) -> bool:
    """Whether a class's methods run in ``namespace`` (or it has none to say otherwise)."""
    methods = [v for v in vars(cls).values() if isinstance(v, types.FunctionType)]
    return not methods or any(m.__globals__ is namespace for m in methods)


def _reach(values: list[Any], name: Any) -> set[int]:
    """Ids of what ``values`` hold, by the edges _OldVersion follows."""
    seen: set[int] = set()
    stack = values
    while stack:
        value = stack.pop()
        if id(value) not in seen:
            seen.add(id(value))
            stack.extend(_held(value, name))
    return seen


def _held(value: Any, name: Any) -> list[Any]:
    """What a module's value holds that the module's body may have put there."""
    kind = type(value)
    if kind is types.FunctionType:
        held = []
        for cell in value.__closure__ or ():
            with contextlib.suppress(ValueError):  # an empty cell
                held.append(cell.cell_contents)
        wrapped = value.__dict__.get("__wrapped__")
        if wrapped is not None:
            held.append(wrapped)
        return held
    if isinstance(value, type):
        return list(vars(value).values()) if value.__module__ == name else []
    if kind is staticmethod or kind is classmethod:
        return [value.__func__]
    if kind is property:
        return [value.fget, value.fset, value.fdel]
    if kind is functools.partial:
        return [value.func]
    if kind is dict:
        items = itertools.islice(dict.values(value), _MAX_ITEMS)
        return [v for v in items if not isinstance(v, _SCALARS)]
    if kind in _CONTAINERS:
        items = itertools.islice(value, _MAX_ITEMS)
        return [v for v in items if not isinstance(v, _SCALARS)]
    return []


_SCALARS = (str, bytes, int, float, complex, bool, type(None))


def find_stale(
    olds: Mapping[str, tuple[dict[str, Any], dict[str, Any] | None]],
    namespaces: dict[int, str],
) -> dict[str, list[StaleReference]]:
    """What holds the old versions' functions and classes (besides the old versions).

    First without the heap: when every reference to every old object is one
    the old versions hold themselves (counted against its reference count),
    nothing else can hold one and the answer is empty. Otherwise one pass of
    the garbage collector for all of them: ``gc.get_referrers`` walks every
    tracked object of the process whatever it looks for, so its cost is the
    heap's size, not the number of objects asked about (about 2.5 ms in a demo
    node, holding the GIL throughout).

    Args:
        olds: module -> (its old version's namespace, its current version's
            namespace or None). Objects an old version shares with its current
            one (kept state, re-exports) are not old; old versions hold each
            other's objects without that being reported (they go together).
        namespaces: id of every known module namespace -> a label for it.

    Returns:
        module -> the references to its old version's objects.
    """
    found: dict[str, list[StaleReference]] = {mod: [] for mod in olds}
    objects, owner, internal, met = _gather(olds)
    if not objects:
        return found
    by_id = {id(obj): obj for obj in objects}
    label = {id(obj): f"{obj.__module__}.{obj.__qualname__}" for obj in objects}
    internal.update((id(objects), id(by_id), id(label), id(owner), id(met)))
    met += (objects, by_id)
    if _only_held_by(met, by_id, internal):
        return found
    met.clear()

    def add(ref: StaleReference, obj: Any, referrer: Any) -> None:
        mod = owner.get(id(obj))
        if mod is None:  # e.g. a partial holding an old object among its arguments
            mod = next((owner[id(r)] for r in gc.get_referents(referrer) if id(r) in owner), "")
        found.setdefault(mod, []).append(ref)

    instances: dict[int, int] = {}
    for referrer in gc.get_referrers(*objects):
        kind = _kind(referrer, by_id, internal)
        if kind is None:
            continue
        if kind == "dict":
            holder = namespaces.get(id(referrer))
            for key, value in list(referrer.items()):
                if id(value) in by_id and value is by_id[id(value)]:
                    ref = StaleReference(
                        "binding" if holder else "container",
                        holder or "dict",
                        key if isinstance(key, str) else repr(key),
                        label[id(value)],
                    )
                    add(ref, value, referrer)
        elif kind == "closure":
            target = referrer.cell_contents if referrer.cell_contents is not None else None
            add(
                StaleReference("closure", "a closure cell", None, _label(target, label)),
                target,
                referrer,
            )
        elif kind == "bound method":
            func = referrer.__func__
            add(
                StaleReference("bound method", repr(referrer)[:80], None, _label(func, label)),
                func,
                referrer,
            )
        elif kind == "partial":
            func = referrer.func
            add(
                StaleReference("partial", repr(referrer)[:80], None, _label(func, label)),
                func,
                referrer,
            )
        elif kind == "subclass":
            base = next(b for b in referrer.__bases__ if id(b) in by_id)
            holder = f"{_class_module(referrer, namespaces)}.{referrer.__qualname__}"
            add(StaleReference("subclass", holder, None, label[id(base)]), base, referrer)
        elif kind == "instance":
            instances[id(type(referrer))] = instances.get(id(type(referrer)), 0) + 1
        else:  # a list or set
            for value in referrer:
                if id(value) in by_id:
                    add(
                        StaleReference(
                            "container", type(referrer).__name__, None, label[id(value)]
                        ),
                        value,
                        referrer,
                    )
    for class_id, count in instances.items():
        ref = StaleReference("instances", label[class_id], str(count), label[class_id])
        add(ref, by_id[class_id], None)
    return found


def _gather(
    olds: Mapping[str, tuple[dict[str, Any], dict[str, Any] | None]],
) -> tuple[list[Any], dict[int, str], set[int], list[Any]]:
    """The old versions' objects (each once), their modules by id, the ids of
    the old versions' own holders, and everything the walks met (with the lists
    they were gathered in)."""
    objects: list[Any] = []
    owner: dict[int, str] = {}
    internal: set[int] = set()
    met: list[Any] = []
    for mod, (namespace, current) in olds.items():
        old = _OldVersion(namespace, current)
        internal |= old.internal
        internal.add(id(old.objects))
        met += old.met
        met.append(old.objects)
        for obj in old.objects:
            if id(obj) not in owner:
                owner[id(obj)] = mod
                objects.append(obj)
    return objects, owner, internal, met


def _kind(referrer: Any, by_id: dict[int, Any], internal: set[int]) -> str | None:
    """What a referrer of old objects is reported as (None: not reported).

    The one rule for both ways of finding stale references: the heap search
    reports what this names, the count without it (_only_held_by) gives up on
    anything this names.
    """
    if id(referrer) in internal or isinstance(referrer, types.FrameType):
        return None
    if isinstance(referrer, dict):
        items = list(referrer.items())
        return "dict" if any(id(v) in by_id and v is by_id[id(v)] for _, v in items) else None
    if isinstance(referrer, types.CellType):
        return "closure"
    if isinstance(referrer, types.MethodType):
        return "bound method"
    if isinstance(referrer, functools.partial):
        return "partial"
    if isinstance(referrer, type) and id(referrer) not in by_id:
        return "subclass" if any(id(b) in by_id for b in referrer.__bases__) else None
    if isinstance(referrer, tuple):
        return None  # __bases__/__mro__ tuples: reported through the subclass itself
    if id(type(referrer)) in by_id:
        return "instance"
    if isinstance(referrer, list | set):
        return "container" if any(id(v) in by_id for v in referrer) else None
    return None


def _only_held_by(met: list[Any], by_id: dict[int, Any], internal: set[int]) -> bool:
    """Whether the objects of ``by_id`` are referenced only by ``met``, none of them reported.

    Counts, with ``gc.get_referents``, the references each object of ``met``
    holds (``met`` itself included) and compares with each old object's
    reference count, read before and after. Equal for every one: no other
    object refers to them, so the heap search would report nothing. Anything
    else (a holder outside ``met``, one in it that ``_kind`` reports, a count
    that moved meanwhile) says False and the heap is searched: a count can only
    cost that search, never hide a reference, because it drops only
    references it saw.
    """
    objects = list(by_id.values())
    before = _references(objects)
    counts = _counted(met, by_id, internal)
    if counts is None:
        return False
    return before == _references(objects) == [counts[id(obj)] for obj in objects]


def _counted(met: list[Any], by_id: dict[int, Any], internal: set[int]) -> dict[int, int] | None:
    """References to each object of ``by_id`` from ``met`` and what it lists (None: one
    of them is a referrer the heap search reports). A function of its own, so that
    no local of it holds an old object when the reference counts are read."""
    counts = dict.fromkeys(by_id, 0)
    seen: set[int] = set()
    for holder in [met, *met]:
        if id(holder) in seen:
            continue
        seen.add(id(holder))
        held = [r for r in gc.get_referents(holder) if id(r) in counts and r is by_id[id(r)]]
        if held and holder is not met and _kind(holder, by_id, internal) is not None:
            return None
        for obj in held:
            counts[id(obj)] += 1
    return counts


def _references(objects: list[Any]) -> list[int]:
    """Each object's reference count, less the one of ``objects`` and the reading's own
    (the generator's variable and the argument: measured on an object only a list
    holds, by the same kind of generator, as the number depends on the interpreter)."""
    own = next(sys.getrefcount(probe) for probe in [object()])
    return list(sys.getrefcount(obj) - own for obj in objects)


def _label(obj: Any, labels: dict[int, str]) -> str:
    return labels.get(id(obj), repr(obj)[:80])


def _class_module(cls: type, namespaces: dict[int, str]) -> str:
    """The label of the namespace a class's methods run in (an old version says so)."""
    for value in list(vars(cls).values()):
        func = getattr(value, "__func__", value)
        if isinstance(func, types.FunctionType) and id(func.__globals__) in namespaces:
            return namespaces[id(func.__globals__)]
    return str(cls.__module__)
