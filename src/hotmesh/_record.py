"""``record``: classes of named fields, declared like dataclasses and cheap to define (no I/O).

A node's start defines a few dozen such classes. ``dataclasses`` compiles
several methods for each (about 0.25 ms a class, 0.5 ms a frozen one, on a
2-vCPU machine) and its import brings ``inspect``, ``ast`` and ``dis``: some
16 ms of a 90 ms start. ``record`` compiles only ``__init__`` and shares the
other methods, for about 0.03 ms a class. It does what those classes use,
with the dataclass semantics: fields in annotation order with defaults,
``field(default=..., default_factory=..., repr=False, init=False)``,
``__post_init__``, ``__match_args__``, ``__repr__``, ``__eq__`` over the fields
(``eq=False``: identity), and ``frozen`` (assignment raises
``FrozenInstanceError``, and equal records hash alike). Type checkers see a
dataclass (PEP 681).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform, overload

__all__ = ["Field", "FrozenInstanceError", "field", "fields", "record"]

_MISSING: Any = type("_Missing", (), {"__repr__": lambda self: "<missing>"})()

T = TypeVar("T", bound=type)


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen record."""


class Field:
    """One field of a record (what ``fields()`` lists)."""

    __slots__ = ("default", "default_factory", "init", "name", "repr")

    def __init__(
        self, default: Any, default_factory: Any, init: bool, repr: bool, name: str = ""
    ) -> None:
        if default is not _MISSING and default_factory is not _MISSING:
            raise ValueError("a field cannot have both a default and a default_factory")
        self.name = name
        self.default = default
        self.default_factory = default_factory
        self.init = init
        self.repr = repr

    def __repr__(self) -> str:
        return f"Field(name={self.name!r})"


def field(
    *,
    default: Any = _MISSING,
    default_factory: Callable[[], Any] = _MISSING,
    init: bool = True,
    repr: bool = True,
) -> Any:
    """A field with options, like ``dataclasses.field``."""
    return Field(default, default_factory, init, repr)


def fields(cls_or_record: Any) -> tuple[Field, ...]:
    """The fields of a record class or instance, in order."""
    found: tuple[Field, ...] | None = getattr(cls_or_record, "__record_fields__", None)
    if found is None:
        raise TypeError(f"{cls_or_record!r} is not a record")
    return found


@overload
def record(cls: T, /) -> T: ...


@overload
def record(*, frozen: bool = False, eq: bool = True) -> Callable[[T], T]: ...


@dataclass_transform(field_specifiers=(field, Field))
def record(cls: Any = None, /, *, frozen: bool = False, eq: bool = True) -> Any:
    """Make ``cls`` a record: ``@record`` or ``@record(frozen=True, eq=False)``."""

    def wrap(cls: T) -> T:
        return _make(cls, frozen=frozen, eq=eq)

    return wrap if cls is None else wrap(cls)


def _make(cls: T, *, frozen: bool, eq: bool) -> T:
    # Not inspect.get_annotations: importing inspect is what records spare a start.
    own = cls.__dict__.get("__annotations__", {})  # noqa: RUF063
    every: list[Field] = [
        f for base in cls.__mro__[-1:0:-1] for f in base.__dict__.get("__record_fields__", ())
    ]
    for name, annotation in own.items():
        if isinstance(annotation, str) and annotation.startswith(("ClassVar", "typing.ClassVar")):
            continue
        value = cls.__dict__.get(name, _MISSING)
        spec = value if isinstance(value, Field) else Field(value, _MISSING, True, True)
        spec.name = name
        if isinstance(value, Field):
            if spec.default is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, spec.default)
        every = [f for f in every if f.name != name] + [spec]
    every_tuple = tuple(every)
    cls.__record_fields__ = every_tuple  # type: ignore[attr-defined]
    cls.__init__ = _init(cls, every_tuple, frozen)  # type: ignore[misc]
    if "__repr__" not in cls.__dict__:
        cls.__repr__ = _repr(tuple(f.name for f in every if f.repr))  # type: ignore[assignment,method-assign]
    if "__match_args__" not in cls.__dict__:
        setattr(cls, "__match_args__", tuple(f.name for f in every if f.init))  # noqa: B010
    names = tuple(f.name for f in every)
    if eq:
        if "__eq__" not in cls.__dict__:
            cls.__eq__ = _eq(names)  # type: ignore[assignment,method-assign]
        if "__hash__" not in cls.__dict__:
            cls.__hash__ = _hash(names) if frozen else None  # type: ignore[assignment,method-assign]
    if frozen:
        cls.__setattr__ = _frozen_setattr(cls, names)  # type: ignore[assignment,method-assign]
        cls.__delattr__ = _frozen_delattr(cls, names)  # type: ignore[assignment,method-assign]
    return cls


def _init(cls: type, every: tuple[Field, ...], frozen: bool) -> Callable[..., None]:
    env: dict[str, Any] = {"_MISSING": _MISSING, "_set": object.__setattr__}
    params: list[str] = []
    body: list[str] = []
    defaulted = ""
    for spec in every:
        name = spec.name
        if spec.default is not _MISSING:
            env[f"_d_{name}"] = spec.default
            value = f"_d_{name}"
        elif spec.default_factory is not _MISSING:
            env[f"_f_{name}"] = spec.default_factory
            value = f"_f_{name}()"
        else:
            value = ""
        if spec.init:
            if value:
                defaulted = name
                params.append(f"{name}=_MISSING" if value.endswith("()") else f"{name}={value}")
                if value.endswith("()"):
                    value = f"{value} if {name} is _MISSING else {name}"
                else:
                    value = name
            elif defaulted:
                raise TypeError(
                    f"{cls.__name__}: field {name!r} without a default follows {defaulted!r}"
                )
            else:
                params.append(name)
                value = name
        elif not value:
            continue  # set by __post_init__, if at all
        body.append(
            f"    _set(self, {name!r}, {value})" if frozen else f"    self.{name} = {value}"
        )
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    source = f"def __init__(self, {', '.join(params)}) -> None:\n" + ("\n".join(body) or "    pass")
    exec(source, env)
    init: Callable[..., None] = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _repr(names: tuple[str, ...]) -> Callable[[Any], str]:
    def __repr__(self: Any) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{type(self).__qualname__}({shown})"

    return __repr__


def _eq(names: tuple[str, ...]) -> Callable[[Any, Any], Any]:
    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)

    return __eq__


def _hash(names: tuple[str, ...]) -> Callable[[Any], int]:
    def __hash__(self: Any) -> int:
        return hash(tuple(getattr(self, n) for n in names))

    return __hash__


def _frozen_setattr(cls: type, names: tuple[str, ...]) -> Callable[[Any, str, Any], None]:
    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        object.__setattr__(self, name, value)  # a subclass's own attribute

    return __setattr__


def _frozen_delattr(cls: type, names: tuple[str, ...]) -> Callable[[Any, str], None]:
    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot delete field {name!r}")
        object.__delattr__(self, name)

    return __delattr__
