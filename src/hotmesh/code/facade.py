"""The stable module object that programs import: a mirror of the current version (no I/O).

Each managed module is one facade object forever. Its ``__dict__`` is a copy
(mirror) of the current version's namespace, refreshed in the atomic switch,
so ``m.f()`` costs one instance-dict lookup. Writes (``m.X = 1``, monkeypatching,
``mock.patch``) go to the mirror and to the current version. Names that version
code rebinds at run time (``global counter``) are served live by a descriptor
on the facade's own class, so ``m.counter`` never shows a stale value.
"""

from __future__ import annotations

import types
from collections.abc import Iterable
from importlib.machinery import ModuleSpec
from typing import Any

# Attributes that describe the module object itself rather than its code; every
# version's namespace gets the facade's values, and a delete keeps them.
IDENTITY = (
    "__name__",
    "__spec__",
    "__loader__",
    "__file__",
    "__cached__",
    "__package__",
    "__path__",
)


class ManagedModule(types.ModuleType):
    """Base class of facades; each facade gets its own subclass (for live names).

    ``__hotmesh_slot__`` is a dict ``{"ns": current namespace or None}`` on the
    subclass, updated in the same atomic step as the mirror.
    """

    __hotmesh_slot__: dict[str, Any] = {}

    def __setattr__(self, name: str, value: Any) -> None:
        ns = type(self).__hotmesh_slot__["ns"]
        if ns is not None:
            ns[name] = value
        if isinstance(type(self).__dict__.get(name), LiveName):
            self.__dict__[name] = value
        else:
            types.ModuleType.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        ns = type(self).__hotmesh_slot__["ns"]
        present = name in self.__dict__ or (ns is not None and name in ns)
        if not present:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        if ns is not None:
            ns.pop(name, None)
        self.__dict__.pop(name, None)


class LiveName:
    """Data descriptor serving one runtime-rebound global from the current version."""

    __slots__ = ("name", "slot")

    def __init__(self, name: str, slot: dict[str, Any]) -> None:
        self.name = name
        self.slot = slot

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        ns = self.slot["ns"]
        if ns is not None and self.name in ns:
            return ns[self.name]
        try:
            return instance.__dict__[self.name]
        except KeyError:
            raise AttributeError(
                f"module {instance.__name__!r} has no attribute {self.name!r}"
            ) from None

    def __set__(self, instance: Any, value: Any) -> None:
        ns = self.slot["ns"]
        if ns is not None:
            ns[self.name] = value
        instance.__dict__[self.name] = value

    def __delete__(self, instance: Any) -> None:
        ns = self.slot["ns"]
        if ns is not None:
            ns.pop(self.name, None)
        instance.__dict__.pop(self.name, None)


def make_facade(name: str, spec: ModuleSpec | None = None) -> ManagedModule:
    """A new facade for module ``name`` (empty mirror, no current version)."""
    cls = type(
        "ManagedModule",
        (ManagedModule,),
        {"__hotmesh_slot__": {"ns": None}, "__module__": __name__},
    )
    cls.__qualname__ = f"ManagedModule[{name}]"
    facade = cls(name)
    if spec is not None:
        d = facade.__dict__
        d["__spec__"] = spec
        d["__loader__"] = spec.loader
        if spec.origin and spec.has_location:
            d["__file__"] = spec.origin
        if spec.cached:
            d["__cached__"] = spec.cached
        if spec.submodule_search_locations is not None:
            d["__path__"] = spec.submodule_search_locations
            d["__package__"] = name
        else:
            d["__package__"] = name.rpartition(".")[0]
    return facade


def slot_of(facade: ManagedModule) -> dict[str, Any]:
    """The facade's slot dict (``{"ns": current namespace or None}``)."""
    return type(facade).__hotmesh_slot__


def identity_of(facade: types.ModuleType) -> dict[str, Any]:
    """The facade's module-identity attributes, to seed a version namespace."""
    d = facade.__dict__
    return {key: d[key] for key in IDENTITY if key in d}


def set_live_names(facade: ManagedModule, names: Iterable[str]) -> None:
    """Serve ``names`` live from the current version (adds descriptors only)."""
    cls = type(facade)
    slot = cls.__hotmesh_slot__
    for name in names:
        if not isinstance(cls.__dict__.get(name), LiveName) and not name.startswith("__"):
            setattr(cls, name, LiveName(name, slot))


def prune_live_names(facade: ManagedModule, keep: Iterable[str]) -> None:
    """Remove live-name descriptors not in ``keep`` (after a switch)."""
    cls = type(facade)
    wanted = set(keep)
    for name, value in list(cls.__dict__.items()):
        if isinstance(value, LiveName) and name not in wanted:
            delattr(cls, name)


def stale_mirror_keys(facade: types.ModuleType, namespace: dict[str, Any]) -> list[str]:
    """Mirror keys the new namespace no longer defines (removed after a switch)."""
    return [key for key in facade.__dict__ if key not in namespace and key not in IDENTITY]


def deleted_mirror(facade: types.ModuleType) -> dict[str, Any]:
    """Mirror contents of a deleted module: identity plus a ``__getattr__`` that fails."""
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
