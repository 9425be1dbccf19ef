"""Which loaded modules must run again when others change: they bound their objects (no I/O).

A module body that did ``from m import f``, ``from .m import *``, subclassed a
class of ``m``, stored ``m``'s objects in a table, or holds instances of
``m``'s classes keeps the *old* objects when ``m`` alone is loaded again; a
fresh process would have bound the new ones. So an upgrade re-runs those
modules in the same batch. The reverse holds for registries: when a module
whose containers hold objects of another module (``REGISTRY[name] = cls``
done by the other's body) runs again, its new containers start empty, so the
module that filled them runs again too. Found by looking at the objects the
current namespaces hold, not at the source, so any form of binding counts.
"""

from __future__ import annotations

import contextlib
import functools
import types
from collections.abc import Iterable, Mapping
from typing import Any

RERUN_FLAG = "__hotmesh_rerun__"

_MAX_ITEMS = 5_000  # per container: a big data table is not scanned to its end
_MAX_DEPTH = 4
_SCALARS = (str, bytes, int, float, complex, bool, type(None), range, bytearray)


class _Owners:
    """The managed module that defined an object (by the globals of its functions)."""

    def __init__(self, namespaces: Mapping[str, dict[str, Any]]) -> None:
        self.by_ns = {id(ns): mod for mod, ns in namespaces.items()}
        self.names = set(namespaces)
        self._classes: dict[int, str | None] = {}

    def of(self, obj: Any) -> str | None:
        kind = type(obj)
        if kind is types.FunctionType:
            return self.by_ns.get(id(obj.__globals__))
        if kind is types.MethodType:
            return self.of(obj.__func__)
        if isinstance(obj, type):
            return self.of_class(obj)
        if kind is classmethod or kind is staticmethod:
            return self.of(obj.__func__)
        if kind is property:
            return self.of(obj.fget)
        if kind is functools.partial:
            return self.of(obj.func)
        if isinstance(obj, types.ModuleType) or kind in _SCALARS:
            return None
        return self.of_class(kind)  # an instance: its class's module

    def of_class(self, cls: type) -> str | None:
        key = id(cls)
        if key in self._classes:
            return self._classes[key]
        owner: str | None = None
        module = getattr(cls, "__module__", None)
        if isinstance(module, str) and module in self.names:
            owner = module
        for value in list(vars(cls).values()):
            func = getattr(value, "__func__", value)
            if type(func) is types.FunctionType and id(func.__globals__) in self.by_ns:
                owner = self.by_ns[id(func.__globals__)]
                break
        self._classes[key] = owner
        return owner


def _inner(value: Any) -> Iterable[Any]:
    """The objects a value holds that a module body may have put there."""
    if isinstance(value, dict):
        items = list(value.items())[:_MAX_ITEMS]
        return [x for kv in items for x in kv]
    if isinstance(value, list | tuple | set | frozenset):
        return list(value)[:_MAX_ITEMS]
    if isinstance(value, types.MappingProxyType):
        return list(value.values())[:_MAX_ITEMS]
    return ()


def _scan(
    mod: str, namespace: dict[str, Any], owners: _Owners
) -> tuple[dict[str, str], dict[str, str]]:
    """What ``mod``'s objects hold of other modules.

    Returns (binds, holds): ``binds`` maps a module to the reason ``mod``
    depends on it (it must re-run when that module does); ``holds`` maps a
    module whose objects sit inside ``mod``'s containers to the reason (that
    module must re-run when ``mod`` does: it may have put them there).
    """
    binds: dict[str, str] = {}
    holds: dict[str, str] = {}
    seen: set[int] = set()

    def note(owner: str | None, reason: str, nested: bool) -> None:
        if owner is None or owner == mod:
            return
        binds.setdefault(owner, reason)
        if nested:
            holds.setdefault(owner, reason)

    def visit(value: Any, where: str, depth: int, nested: bool) -> None:
        if type(value) in _SCALARS or isinstance(value, types.ModuleType) or id(value) in seen:
            return
        seen.add(id(value))
        owner = owners.of(value)
        if owner is not None and owner != mod:
            what = getattr(value, "__qualname__", None)
            if not isinstance(what, str) or isinstance(value, functools.partial):
                what = f"a {type(value).__qualname__} instance"
            note(owner, f"{where} is {owner}'s {what}", nested)
            return
        if depth >= _MAX_DEPTH:
            return
        if isinstance(value, type):
            if owner != mod:
                return
            for base in value.__bases__:
                base_owner = owners.of_class(base)
                if base_owner is not None and base_owner != mod:
                    note(
                        base_owner, f"{where} subclasses {base_owner}'s {base.__qualname__}", False
                    )
            meta_owner = owners.of_class(type(value))
            if meta_owner is not None and meta_owner != mod:
                note(meta_owner, f"{where} has metaclass from {meta_owner}", False)
            for key, item in list(vars(value).items()):
                if not (isinstance(key, str) and key.startswith("__") and key.endswith("__")):
                    visit(item, f"{where}.{key}", depth + 1, True)
            return
        if type(value) is types.FunctionType:
            for item in value.__defaults__ or ():
                visit(item, f"{where} (default)", depth + 1, False)
            for item in (value.__kwdefaults__ or {}).values():
                visit(item, f"{where} (default)", depth + 1, False)
            for cell in value.__closure__ or ():
                with contextlib.suppress(ValueError):  # an empty cell
                    visit(cell.cell_contents, f"{where} (closure)", depth + 1, False)
            for key, item in list(value.__dict__.items()):
                visit(item, f"{where}.{key}", depth + 1, True)
            return
        inner = _inner(value)
        if inner:
            for item in inner:
                visit(item, f"{where}[...]", depth + 1, True)
            return
        attrs = getattr(value, "__dict__", None)
        if isinstance(attrs, dict) and owners.of_class(type(value)) is not None:
            for key, item in list(attrs.items()):
                visit(item, f"{where}.{key}", depth + 1, True)

    for name, value in list(namespace.items()):
        if name.startswith("__") and name.endswith("__"):
            continue
        visit(value, f"{mod}.{name}", 0, False)
    return binds, holds


def find_dependents(
    namespaces: Mapping[str, dict[str, Any]], changed: Iterable[str]
) -> dict[str, str]:
    """The loaded modules that must run again, with the batch, when ``changed`` do.

    Args:
        namespaces: each loaded managed module -> its current namespace.
        changed: the modules being loaded or removed.

    Returns:
        module -> why (the first binding found), in the order they were added.
    """
    owners = _Owners(namespaces)
    scans = {mod: _scan(mod, ns, owners) for mod, ns in namespaces.items()}
    batch = set(changed)
    added: dict[str, str] = {}
    grew = True
    while grew:
        grew = False
        for mod, (binds, _holds) in scans.items():
            if mod in batch:
                continue
            hit = next((owner for owner in binds if owner in batch), None)
            if hit is not None:
                added[mod] = binds[hit]
                batch.add(mod)
                grew = True
        for mod in list(batch):
            if mod not in scans:
                continue
            for owner, reason in scans[mod][1].items():
                if owner not in batch and owner in scans:
                    added[owner] = f"{owner} may have filled {mod}'s containers ({reason})"
                    batch.add(owner)
                    grew = True
    return added


def refusing(namespaces: Mapping[str, dict[str, Any]], mods: Iterable[str]) -> list[str]:
    """Those of ``mods`` whose current version declares ``__hotmesh_rerun__ = False``."""
    return [mod for mod in mods if namespaces.get(mod, {}).get(RERUN_FLAG) is False]
