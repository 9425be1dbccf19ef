"""Finding what still holds objects of an old version, through the garbage collector (no I/O).

Erlang's analogue is a fun pointing at old code: it keeps working until the
purge and then fails with ``badfun``. Here such references keep running the old
version forever, so the code server lists them for the engineer to fix.
"""

from __future__ import annotations

import functools
import gc
import sys
import types
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


def _old_objects(namespace: dict[str, Any], current: dict[str, Any] | None) -> list[Any]:
    """Functions and classes defined by the version whose globals are ``namespace``."""
    found: list[Any] = []
    for name, value in list(namespace.items()):
        if current is not None and current.get(name) is value:
            continue
        if isinstance(value, types.FunctionType) and value.__globals__ is namespace:
            found.append(value)
        elif isinstance(value, type) and value.__module__ == namespace.get("__name__"):
            methods = [v for v in vars(value).values() if isinstance(v, types.FunctionType)]
            if not methods or any(m.__globals__ is namespace for m in methods):
                found.append(value)
    return found


def _internal_ids(objects: list[Any], namespace: dict[str, Any]) -> set[int]:
    """Objects that belong to the old version itself (its dicts, cells, methods)."""
    ids = {id(namespace), id(objects)}
    for obj in objects:
        functions = [obj]
        if isinstance(obj, type):
            ids.update(id(d) for d in gc.get_referents(obj.__dict__))
            functions = [v for v in vars(obj).values() if isinstance(v, types.FunctionType)]
            ids.update(id(v) for v in vars(obj).values())
        for fn in functions:
            if isinstance(fn, types.FunctionType):
                ids.update(id(cell) for cell in fn.__closure__ or ())
                ids.add(id(fn.__defaults__))
    return ids


def find_stale(
    namespace: dict[str, Any],
    current: dict[str, Any] | None,
    namespaces: dict[int, str],
) -> list[StaleReference]:
    """What holds the old version's functions and classes (besides itself).

    Args:
        namespace: the old version's namespace.
        current: the current version's namespace (objects shared with it, such
            as kept state or re-exports, are not old).
        namespaces: id of every known module namespace -> a label for it.
    """
    objects = _old_objects(namespace, current)
    if not objects:
        return []
    internal = _internal_ids(objects, namespace)
    by_id = {id(obj): obj for obj in objects}
    label = {id(obj): f"{obj.__module__}.{obj.__qualname__}" for obj in objects}
    internal.update((id(by_id), id(label)))
    found: list[StaleReference] = []
    instances: dict[int, int] = {}
    here = sys._getframe()
    for referrer in gc.get_referrers(*objects):
        if id(referrer) in internal or referrer is here or isinstance(referrer, types.FrameType):
            continue
        if isinstance(referrer, dict):
            holder = namespaces.get(id(referrer))
            for key, value in list(referrer.items()):
                if id(value) in by_id and value is by_id[id(value)]:
                    found.append(
                        StaleReference(
                            "binding" if holder else "container",
                            holder or "dict",
                            key if isinstance(key, str) else repr(key),
                            label[id(value)],
                        )
                    )
            continue
        if isinstance(referrer, types.CellType):
            target = referrer.cell_contents if referrer.cell_contents is not None else None
            found.append(StaleReference("closure", "a closure cell", None, _label(target, label)))
        elif isinstance(referrer, types.MethodType):
            found.append(
                StaleReference(
                    "bound method", repr(referrer)[:80], None, _label(referrer.__func__, label)
                )
            )
        elif isinstance(referrer, functools.partial):
            found.append(
                StaleReference("partial", repr(referrer)[:80], None, _label(referrer.func, label))
            )
        elif isinstance(referrer, type) and id(referrer) not in by_id:
            base = next((b for b in referrer.__bases__ if id(b) in by_id), None)
            if base is not None:
                found.append(
                    StaleReference(
                        "subclass",
                        f"{_class_module(referrer, namespaces)}.{referrer.__qualname__}",
                        None,
                        label[id(base)],
                    )
                )
        elif isinstance(referrer, tuple):
            continue  # __bases__/__mro__ tuples: reported through the subclass itself
        elif id(type(referrer)) in by_id:
            instances[id(type(referrer))] = instances.get(id(type(referrer)), 0) + 1
        elif isinstance(referrer, list | set):
            for value in referrer:
                if id(value) in by_id:
                    found.append(
                        StaleReference("container", type(referrer).__name__, None, label[id(value)])
                    )
    for class_id, count in instances.items():
        found.append(StaleReference("instances", label[class_id], str(count), label[class_id]))
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
