"""Completion of a dotted name at the cursor (``na``, ``mod.attr.pre``) from a
session's live namespace, by static lookup only: no property, ``__getattr__``,
``__dir__`` or other application code runs, and jedi is not needed. Returns
None for anything else (imports, calls, subscripts, strings), which jedi then
answers. Pure; no I/O."""

from __future__ import annotations

import builtins
import inspect
import keyword
import re
import types
from collections.abc import Iterable
from typing import Any

Item = tuple[str, int, str]

# The dotted name that ends at the cursor, and what comes right before it.
_TAIL = re.compile(r"(?:[A-Za-z_]\w*\.)*[A-Za-z_]?\w*\Z")
_FUNCTIONS = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.MethodWrapperType,
    types.ClassMethodDescriptorType,
    staticmethod,
    classmethod,
)
_MISSING = object()


def complete_static(namespace: dict[str, Any], code: str, pos: int) -> list[Item] | None:
    """Completions of the dotted name ending at ``pos``, or None when jedi must answer.

    Items are ``(name, start, kind)`` as ``completion.complete`` gives them.
    Private names (``_x``) are offered only once the typed part starts with ``_``.
    """
    line = code[code.rfind("\n", 0, pos) + 1 : pos]
    match = _TAIL.search(line)
    if match is None:
        return None
    before = line[: match.start()]
    if _needs_jedi(before, match.group()):
        return None
    *path, typed = match.group().split(".")
    if not path:
        names = _names_in_scope(namespace)
        items = _matching(names, typed, lambda name: _kind(_in_scope(namespace, name)))
        items += [(k, -len(typed), "keyword") for k in keyword.kwlist if k.startswith(typed)]
        return sorted(set(items))
    target = _in_scope(namespace, path[0])
    for attr in path[1:]:
        if target is _MISSING or not _is_plain_value(target):
            break
        target = _static_attr(target, attr)
    if target is _MISSING:
        return []  # a name that does not exist: nothing to offer
    if not _is_plain_value(target):
        return None  # a property or other descriptor: only its code knows what it gives
    return _matching(_attribute_names(target), typed, lambda n: _kind(_static_attr(target, n)))


def _needs_jedi(before: str, dotted: str) -> bool:
    stripped = before.lstrip()
    if stripped.startswith(("import ", "from ")) or stripped in ("import", "from"):
        return True  # module names: jedi reads the import system
    if before.count("'") % 2 or before.count('"') % 2:
        return True  # inside a string
    if before.endswith((".", ")", "]", "}", "'", '"')):
        return True  # an attribute of a call, subscript or literal
    return dotted[:1].isdigit()


def _matching(names: Iterable[str], typed: str, kind: Any) -> list[Item]:
    private = typed.startswith("_")
    return sorted(
        (name, -len(typed), kind(name))
        for name in set(names)
        if name.startswith(typed) and (private or not name.startswith("_"))
    )


def _names_in_scope(namespace: dict[str, Any]) -> set[str]:
    return {n for n in namespace if isinstance(n, str)} | set(vars(builtins))


def _in_scope(namespace: dict[str, Any], name: str) -> Any:
    if name in namespace:
        return namespace[name]
    return vars(builtins).get(name, _MISSING)


def _static_attr(obj: Any, name: str) -> Any:
    try:
        return inspect.getattr_static(obj, name)
    except AttributeError:
        return _MISSING


def _is(obj: Any, kinds: type | tuple[type, ...]) -> bool:
    # type(), not isinstance(): isinstance may read a __class__ property.
    return issubclass(type(obj), kinds)


def _is_plain_value(obj: Any) -> bool:
    """False for a descriptor whose value only running it gives (a property, a slot)."""
    if _is(obj, (type, types.ModuleType, *_FUNCTIONS)):
        return True
    return not any("__get__" in _class_dict(cls) for cls in _mro(type(obj)))


def _attribute_names(obj: Any) -> set[str]:
    """What ``dir(obj)`` would list, read from the dictionaries themselves."""
    names: set[str] = set()
    if _is(obj, types.ModuleType):
        own = _own_dict(obj)
        names.update(own)
        exported: Any = own.get("__all__", ())
        if _is(exported, (list, tuple)):
            names.update(n for n in exported if _is(n, str))  # a lazy module's names
        return names
    for cls in _mro(obj) if _is(obj, type) else _mro(type(obj)):
        names.update(_class_dict(cls))
    if not _is(obj, type):
        names.update(_own_dict(obj))
    return {n for n in names if _is(n, str)}


def _mro(cls: type) -> tuple[type, ...]:
    mro = type.__dict__["__mro__"].__get__(cls)
    return mro if _is(mro, tuple) else (cls,)


def _class_dict(cls: type) -> Any:
    return type.__dict__["__dict__"].__get__(cls)


def _own_dict(obj: Any) -> dict[Any, Any]:
    """``obj.__dict__`` when the interpreter keeps one, without running a property."""
    for cls in _mro(type(obj)):
        slot = _class_dict(cls).get("__dict__")
        if slot is not None:
            if not _is(slot, (types.GetSetDescriptorType, types.MemberDescriptorType)):
                return {}  # a class that redefines __dict__: not read
            try:
                found = slot.__get__(obj)
            except (AttributeError, TypeError):
                return {}
            return found if _is(found, dict) else {}
    return {}


def _kind(value: Any) -> str:
    if _is(value, types.ModuleType):
        return "module"
    if _is(value, type):
        return "class"
    if _is(value, _FUNCTIONS):
        return "function"
    if _is(value, property):
        return "property"
    return "instance"
