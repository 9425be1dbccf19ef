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
            if isinstance(value, types.FunctionType):
                if value.__globals__ is namespace:
                    self._function(value)
                else:
                    foreign.append(value)
            elif isinstance(value, type):
                if value.__module__ != name or not _defined_in(value, namespace):
                    continue
                self.objects.append(value)
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

    One pass of the garbage collector for all of them: ``gc.get_referrers``
    walks every tracked object of the process whatever it looks for, so its
    cost is the heap's size, not the number of objects asked about.

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
    objects: list[Any] = []
    internal: set[int] = set()
    owner: dict[int, str] = {}
    for mod, (namespace, current) in olds.items():
        old = _OldVersion(namespace, current)
        internal |= old.internal
        internal.add(id(old.objects))
        for obj in old.objects:
            if id(obj) not in owner:
                owner[id(obj)] = mod
                objects.append(obj)
    if not objects:
        return found
    by_id = {id(obj): obj for obj in objects}
    label = {id(obj): f"{obj.__module__}.{obj.__qualname__}" for obj in objects}
    internal.update((id(objects), id(by_id), id(label), id(owner)))

    def add(ref: StaleReference, obj: Any, referrer: Any) -> None:
        mod = owner.get(id(obj))
        if mod is None:  # e.g. a partial holding an old object among its arguments
            mod = next((owner[id(r)] for r in gc.get_referents(referrer) if id(r) in owner), "")
        found.setdefault(mod, []).append(ref)

    instances: dict[int, int] = {}
    for referrer in gc.get_referrers(*objects):
        if id(referrer) in internal or isinstance(referrer, types.FrameType):
            continue
        if isinstance(referrer, dict):
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
            continue
        if isinstance(referrer, types.CellType):
            target = referrer.cell_contents if referrer.cell_contents is not None else None
            add(
                StaleReference("closure", "a closure cell", None, _label(target, label)),
                target,
                referrer,
            )
        elif isinstance(referrer, types.MethodType):
            func = referrer.__func__
            add(
                StaleReference("bound method", repr(referrer)[:80], None, _label(func, label)),
                func,
                referrer,
            )
        elif isinstance(referrer, functools.partial):
            func = referrer.func
            add(
                StaleReference("partial", repr(referrer)[:80], None, _label(func, label)),
                func,
                referrer,
            )
        elif isinstance(referrer, type) and id(referrer) not in by_id:
            base = next((b for b in referrer.__bases__ if id(b) in by_id), None)
            if base is not None:
                holder = f"{_class_module(referrer, namespaces)}.{referrer.__qualname__}"
                add(StaleReference("subclass", holder, None, label[id(base)]), base, referrer)
        elif isinstance(referrer, tuple):
            continue  # __bases__/__mro__ tuples: reported through the subclass itself
        elif id(type(referrer)) in by_id:
            instances[id(type(referrer))] = instances.get(id(type(referrer)), 0) + 1
        elif isinstance(referrer, list | set):
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


def _label(obj: Any, labels: dict[int, str]) -> str:
    return labels.get(id(obj), repr(obj)[:80])


def _class_module(cls: type, namespaces: dict[int, str]) -> str:
    """The label of the namespace a class's methods run in (an old version says so)."""
    for value in list(vars(cls).values()):
        func = getattr(value, "__func__", value)
        if isinstance(func, types.FunctionType) and id(func.__globals__) in namespaces:
            return namespaces[id(func.__globals__)]
    return str(cls.__module__)
