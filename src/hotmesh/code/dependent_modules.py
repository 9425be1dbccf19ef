"""Which loaded modules must run again when others change: they bound their objects (no I/O).

A module body that did ``from m import f``, ``from .m import *``, subclassed a
class of ``m``, stored ``m``'s objects in a table, or holds instances of
``m``'s classes keeps the *old* objects when ``m`` alone is loaded again; a
fresh process would have bound the new ones. So an upgrade re-runs those
modules in the same batch. The reverse holds for registries: when a module
whose containers hold objects of another module (``REGISTRY[name] = cls``
done by the other's body) runs again, its new containers start empty, so the
module that filled them runs again too. Found by looking at the objects the
current namespaces hold, so any form of binding counts, and from the source
for what objects cannot show: a constant bound by ``from m import LIMIT`` or
computed from ``m.LIMIT`` while the body runs (an int has no owner).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import re
import types
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ast

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


def _inner(value: Any) -> list[Any]:
    """The objects a value holds that a module body may have put there."""
    if isinstance(value, dict):
        items = list(itertools.islice(dict.items(value), _MAX_ITEMS))
        return [x for kv in items for x in kv]
    if isinstance(value, list | tuple | set | frozenset):
        return list(itertools.islice(value, _MAX_ITEMS))
    if isinstance(value, types.MappingProxyType):
        return list(itertools.islice(value.values(), _MAX_ITEMS))
    return []


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


def import_time_uses(
    mod: str, source: str, is_package: bool, known: Collection[str]
) -> dict[str, str]:
    """The modules of ``known`` whose names ``mod``'s body reads while it runs.

    From-imports of names that are not submodules, star imports, and
    attributes of an imported module read outside function bodies (class
    bodies, decorators and defaults run with the body). Returns module -> why.
    A SyntaxError propagates.
    """
    import ast  # only while upgrading: a node's start need not load it

    uses: dict[str, str] = {}
    aliases: dict[str, str] = {}
    base = mod.split(".") if is_package else mod.split(".")[:-1]

    def absolute(level: int, target: str | None) -> str:
        if level == 0:
            return target or ""
        parts = base[: len(base) - (level - 1)] if level > 1 else base
        return ".".join([*parts, target] if target else parts)

    def attribute(node: ast.Attribute) -> None:
        attrs: list[str] = []
        current: ast.expr = node
        while isinstance(current, ast.Attribute):
            attrs.append(current.attr)
            current = current.value
        if not isinstance(current, ast.Name) or current.id not in aliases:
            return
        target, attrs = aliases[current.id], attrs[::-1]
        while attrs and f"{target}.{attrs[0]}" in known:
            target = f"{target}.{attrs.pop(0)}"
        if attrs and target in known:
            uses.setdefault(target, f"{mod} reads {target}.{attrs[0]} while its body runs")

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                for expr in [*child.decorator_list, child.args]:
                    walk_one(expr)
                continue
            if isinstance(child, ast.Lambda):
                walk_one(child.args)
                continue
            if isinstance(child, ast.ImportFrom):
                origin = absolute(child.level, child.module)
                for alias in child.names:
                    full = f"{origin}.{alias.name}"
                    if full in known:
                        aliases[alias.asname or alias.name] = full
                    elif origin in known:
                        what = "*" if alias.name == "*" else alias.name
                        uses.setdefault(origin, f"{mod} imports {what} from {origin}")
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.asname:
                        aliases[alias.asname] = alias.name
                    else:
                        head = alias.name.split(".")[0]
                        aliases[head] = head
            elif isinstance(child, ast.Attribute) and isinstance(child.ctx, ast.Load):
                attribute(child)
            walk(child)

    def walk_one(node: ast.AST) -> None:
        walk(ast.Expr(node) if isinstance(node, ast.expr) else node)  # node itself included

    walk(ast.parse(source))
    return uses


_RELATIVE = re.compile(r"\bfrom[\s\\]*\.")  # `from .m import`, also across a backslash


def may_import(source: str, heads: frozenset[str]) -> bool:
    """Whether ``source`` may import from a package of ``heads`` (named as a word) or relatively.

    ``import_time_uses`` of a source for which this is False is empty whatever
    modules ``known`` holds, if ``heads`` are their top-level names: it need not
    be parsed.
    """
    if _RELATIVE.search(source) is not None:
        return True
    if not any(head in source for head in heads):  # C speed; most sources stop here
        return False
    return _word_pattern(heads).search(source) is not None


@functools.lru_cache(maxsize=16)
def _word_pattern(words: frozenset[str]) -> re.Pattern[str]:
    return re.compile(rf"\b(?:{'|'.join(sorted(re.escape(word) for word in words))})\b")


def find_dependents(
    namespaces: Mapping[str, dict[str, Any]],
    changed: Iterable[str],
    uses: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, str]:
    """The loaded modules that must run again, with the batch, when ``changed`` do.

    Args:
        namespaces: each loaded managed module -> its current namespace.
        changed: the modules being loaded or removed.
        uses: module -> the modules its body reads while it runs
            (``import_time_uses``), with why.

    Returns:
        module -> why (the first binding found), in the order they were added.
    """
    owners = _Owners(namespaces)
    scans = {mod: _scan(mod, ns, owners) for mod, ns in namespaces.items()}
    for mod, used in (uses or {}).items():
        if mod in scans:
            for owner, why in used.items():
                if owner != mod:
                    scans[mod][0].setdefault(owner, why)
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
