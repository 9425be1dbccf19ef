"""The cross-reference check of a load, with an index kept per loaded version (no I/O).

The cost of checking a load does not grow with the number of managed modules.
Every load is checked, so between loads the current code has no dangling
reference; a load can then only break

- references of the modules it loads (their new sources are parsed), and
- references *into* a module it loads that name something the new version no
  longer defines (a removed name), or into a module that is new.

A module whose source does not contain such a word cannot hold such a
reference. So a load parses the changed sources, and parses an unchanged
module only when its source contains a removed name or the name of a new
module as a word (a substring search over the sources first, at C speed); the
index keeps each version's parsed references, so that happens once per
version. A load that removes no name looks at no other module at all.

``xref(mods)`` (nothing executes) is the full analysis instead: it also lists
references that already dangle in unchanged modules (left by a forced load,
or there when the modules were adopted), which a load does not report again.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from hotmesh.code import xref_source as xref
from hotmesh.code.versions import EMPTY, Entry, Version

Names = Collection[str] | None


class XrefIndex:
    """xref for the code server: dangling references once some modules change."""

    def __init__(self) -> None:
        self._refs: dict[str, tuple[int, list[xref.Ref]]] = {}  # vsn -> (modules known, refs)
        self._heads: tuple[int, frozenset[str]] = (-1, frozenset())

    def forget(self, version: Version) -> None:
        """Drop what was kept for a purged version."""
        self._refs.pop(version.vsn, None)

    def for_load(
        self, world: Mapping[str, Entry], new: Mapping[str, Version]
    ) -> list[xref.Problem]:
        """Problems the executed ``new`` versions would introduce (by their namespaces)."""
        names = {mod: _names_of(version.namespace) for mod, version in new.items()}
        sources = {mod: (v.path or mod, v.source) for mod, v in new.items() if v.source is not None}
        return self._check(world, names, sources, new, full=False)

    def for_sources(
        self, world: Mapping[str, Entry], sources: Mapping[str, tuple[str, str]]
    ) -> list[xref.Problem]:
        """Every dangling reference involving ``sources`` (module -> (path, text)) if loaded.

        Nothing executes. Also lists references that already dangle in
        unchanged modules. Raises SyntaxError for a source that does not parse.
        """
        names = {mod: xref.defined_names(source) for mod, (_path, source) in sources.items()}
        return self._check(world, names, sources, {}, full=True)

    def _check(
        self,
        world: Mapping[str, Entry],
        after: Mapping[str, Names],
        sources: Mapping[str, tuple[str, str]],
        new: Mapping[str, Version],
        *,
        full: bool,
    ) -> list[xref.Problem]:
        changed = set(after)

        def is_module(name: str) -> bool:
            return name in changed or world.get(name, EMPTY)[0] is not None

        def names(mod: str) -> Names:
            if mod in after:
                return after[mod]
            current = world.get(mod, EMPTY)[0]
            return None if current is None else _names_of(current.namespace)

        known = len(world) + sum(1 for mod in changed if mod not in world)
        heads = self._heads_of(world, changed)
        refs: dict[str, tuple[str, list[xref.Ref]]] = {}
        for mod, (path, source) in sources.items():
            version = new.get(mod)
            if version is not None:
                refs[mod] = (path, self._refs_of(version, known, is_module, heads))
            else:
                refs[mod] = (path, _parse(mod, path, source, is_module, heads))
        for current in self._candidates(world, after, is_module, full):
            refs[current.module] = (
                current.path or current.module,
                self._refs_of(current, known, is_module, heads),
            )
        before = {}
        for mod in changed:
            previous = world.get(mod, EMPTY)[0]
            if previous is not None:
                before[mod] = set(previous.namespace)
        return xref.check(refs, names, is_module, changed, before)

    def _candidates(
        self,
        world: Mapping[str, Entry],
        after: Mapping[str, Names],
        is_module: Callable[[str], bool],
        full: bool,
    ) -> list[Version]:
        """The unchanged current versions that may refer to what the load breaks."""
        triggers: set[str] = set()
        for mod, defined in after.items():
            current = world.get(mod, EMPTY)[0]
            if full or current is None or _names_of(current.namespace) is None:
                # Nothing referred to it before, or references into it were unchecked.
                triggers.add(mod.rpartition(".")[2])
            elif defined is not None:
                triggers.update(
                    name
                    for name in current.namespace
                    if name not in defined
                    and not name.startswith("__")
                    and not is_module(f"{mod}.{name}")
                )
        if not triggers:
            return []
        words = frozenset(triggers)
        # The full analysis also parses modules with relative imports (``from . import f``
        # does not name the package).
        test = xref.mentions if full else xref.names_any
        return [
            current
            for mod, (current, _old) in list(world.items())
            if current is not None
            and mod not in after
            and current.source is not None
            and test(current.source, words)
        ]

    def _heads_of(self, world: Mapping[str, Entry], changed: set[str]) -> frozenset[str]:
        """Top-level names of the managed modules (recomputed only when modules are added)."""
        size, heads = self._heads
        if size != len(world):
            heads = frozenset(mod.partition(".")[0] for mod in list(world))
            self._heads = (len(world), heads)
        extra = {mod.partition(".")[0] for mod in changed} - heads
        return heads | extra if extra else heads

    def _refs_of(
        self,
        version: Version,
        known: int,
        is_module: Callable[[str], bool],
        heads: frozenset[str],
    ) -> list[xref.Ref]:
        cached = self._refs.get(version.vsn)
        if cached is not None and cached[0] == known:
            return cached[1]
        assert version.source is not None
        refs = _parse(version.module, version.path or "", version.source, is_module, heads)
        self._refs[version.vsn] = (known, refs)
        return refs


def _parse(
    mod: str,
    path: str,
    source: str,
    is_module: Callable[[str], bool],
    heads: frozenset[str],
) -> list[xref.Ref]:
    try:
        return xref.references(mod, source, path.endswith("__init__.py"), is_module, heads)
    except SyntaxError:
        return []


def _names_of(namespace: Mapping[str, object]) -> Names:
    return None if "__getattr__" in namespace else namespace.keys()
