"""Cross-module references in source text, and which dangle, like Erlang's xref (no I/O).

A reference is ``m.f`` where ``m`` is bound by an import of a managed module,
or ``from m import f``. A load is refused when a reference, in the code that
will be current after it, names something the target module will not define.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Ref:
    """One reference from a module's source to a name of another module."""

    line: int
    target: str
    name: str


@dataclass(frozen=True)
class Problem:
    """A dangling reference: ``file:line: <module> uses <name> (<why>)``."""

    file: str
    line: int
    module: str
    name: str
    text: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.text}"


def _absolute(module: str, is_package: bool, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, target] if target else base)


def _chain(node: ast.Attribute) -> tuple[str, list[str]] | None:
    attrs: list[str] = []
    current: ast.expr = node
    while isinstance(current, ast.Attribute):
        attrs.append(current.attr)
        current = current.value
    if not isinstance(current, ast.Name):
        return None
    return current.id, attrs[::-1]


@functools.lru_cache(maxsize=64)
def _word_pattern(words: frozenset[str]) -> re.Pattern[str]:
    alternatives = "|".join(sorted(re.escape(word) for word in words))
    return re.compile(rf"\b(?:{alternatives})\b|\bfrom\s*\.")


def mentions(source: str, words: frozenset[str]) -> bool:
    """Cheap prefilter: whether ``source`` names any of ``words`` or has a relative import."""
    return bool(words) and _word_pattern(words).search(source) is not None


@functools.lru_cache(maxsize=64)
def _names_pattern(words: frozenset[str]) -> re.Pattern[str]:
    return re.compile(rf"\b(?:{'|'.join(sorted(re.escape(word) for word in words))})\b")


def names_any(source: str, words: frozenset[str]) -> bool:
    """Whether ``source`` contains any of ``words`` as a word (comments and strings count).

    A module whose source does not cannot refer to any of them. A substring
    search (C speed, no per-position work) comes first; the word-boundary
    regex runs only on sources that contain one of the words.
    """
    return (
        any(word in source for word in words) and _names_pattern(words).search(source) is not None
    )


def _nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` (like ast.walk, about twice as fast)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for field in node._fields:
            value = getattr(node, field, None)
            if isinstance(value, list):
                stack.extend(item for item in value if isinstance(item, ast.AST))
            elif isinstance(value, ast.AST):
                stack.append(value)


def references(
    module: str,
    source: str,
    is_package: bool,
    is_module: Callable[[str], bool],
    heads: frozenset[str],
) -> list[Ref]:
    """The references ``module``'s source makes to names of other modules.

    ``is_module`` tells the dotted names of the modules we can check;
    references to anything else are ignored. ``heads`` are their top-level
    names: a source naming none of them (and without relative imports) is not
    parsed. A SyntaxError propagates.
    """
    if not mentions(source, heads):
        return []
    tree = ast.parse(source)
    bound: dict[str, str] = {}
    refs: list[Ref] = []
    attributes: list[ast.Attribute] = []
    for node in _nodes(tree):
        if isinstance(node, ast.Attribute):
            if isinstance(node.ctx, ast.Load):
                attributes.append(node)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    if is_module(alias.name):
                        bound[alias.asname] = alias.name
                else:
                    head = alias.name.split(".")[0]
                    if is_module(head):
                        bound[head] = head
        elif isinstance(node, ast.ImportFrom):
            origin = _absolute(module, is_package, node.level, node.module)
            if not origin or not is_module(origin):
                continue
            for alias in node.names:
                if alias.name == "*":
                    continue
                full = f"{origin}.{alias.name}"
                if is_module(full):
                    bound[alias.asname or alias.name] = full
                else:
                    refs.append(Ref(node.lineno, origin, alias.name))
    if not bound:
        return refs
    for node in attributes:
        chain = _chain(node)
        if chain is None or chain[0] not in bound:
            continue
        target, attrs = bound[chain[0]], chain[1]
        # Inner nodes of a chain repeat a prefix of it; the set below drops duplicates.
        while attrs and is_module(f"{target}.{attrs[0]}"):
            target = f"{target}.{attrs.pop(0)}"
        if attrs:
            refs.append(Ref(node.lineno, target, attrs[0]))
    return sorted(set(refs), key=lambda r: (r.line, r.target, r.name))


def defined_names(source: str) -> set[str] | None:
    """Names a module defines at top level, from its source; None when unknowable.

    Unknowable: a star-import, a module ``__getattr__``, or a call of
    ``globals()`` or ``exec``. Names declared ``global`` in functions count.
    """
    tree = ast.parse(source)
    names: set[str] = set()
    unknown = False

    def walk(node: ast.AST, nested: bool) -> None:
        nonlocal unknown
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                if not nested:
                    names.add(child.name)
                walk(child, True)
            elif isinstance(child, ast.Lambda):
                walk(child, True)
            elif isinstance(child, ast.Import | ast.ImportFrom):
                for alias in child.names:
                    if alias.name == "*":
                        unknown = True
                    elif not nested:
                        names.add(alias.asname or alias.name.split(".")[0])
            elif isinstance(child, ast.Global):
                names.update(child.names)
            else:
                if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                    if not nested:
                        names.add(child.id)
                elif isinstance(child, ast.Call) and isinstance(child.func, ast.Name):
                    unknown = unknown or child.func.id in ("globals", "exec")
                walk(child, nested)

    walk(tree, False)
    if unknown or "__getattr__" in names:
        return None
    return names


def check(
    refs: Mapping[str, tuple[str, list[Ref]]],
    names: Callable[[str], Collection[str] | None],
    is_module: Callable[[str], bool],
    changed: Collection[str],
    before: Mapping[str, Collection[str]],
) -> list[Problem]:
    """The dangling references among ``refs`` once the ``changed`` modules load.

    Args:
        refs: referencing module -> (file shown in problems, its references), for
            the code that will be current after the load.
        names: a checkable module -> the names it will define (None: unknown,
            or not a checkable module).
        is_module: whether a dotted name will be a checkable module.
        changed: the modules being loaded.
        before: changed module -> the names its current version defines, to
            tell "removed in the new version" from "not defined".
    """
    problems = []
    for module, (file, module_refs) in sorted(refs.items()):
        for ref in module_refs:
            if module not in changed and ref.target not in changed:
                continue
            defined = names(ref.target)
            if defined is None or ref.name in defined or ref.name.startswith("__"):
                continue
            if is_module(f"{ref.target}.{ref.name}"):
                continue
            if ref.target in changed:
                why = (
                    "removed in the new version"
                    if ref.name in before.get(ref.target, ())
                    else "not defined in the new version"
                )
            else:
                why = f"not defined in {ref.target}"
            text = f"{module} uses {ref.target}.{ref.name} ({why})"
            problems.append(Problem(file, ref.line, module, f"{ref.target}.{ref.name}", text))
    return problems
