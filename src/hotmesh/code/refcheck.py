"""Running the cross-reference check over the loaded world plus new code (no I/O).

Holds the parsed references of each loaded version (parsing is the expensive
part), so a load parses only the new sources.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hotmesh.code import crossref
from hotmesh.code.versions import EMPTY, Entry, Version


class RefChecker:
    """xref for the code server: dangling references once some modules change."""

    def __init__(self) -> None:
        self._refs: dict[str, tuple[frozenset[str], list[crossref.Ref]]] = {}

    def forget(self, version: Version) -> None:
        """Drop what was cached for a purged version."""
        self._refs.pop(version.vsn, None)

    def for_load(
        self, world: Mapping[str, Entry], new: Mapping[str, Version]
    ) -> list[crossref.Problem]:
        """Problems if the executed ``new`` versions became current (by their namespaces)."""
        names = _current_names(world)
        for mod, version in new.items():
            names[mod] = _names_of(version.namespace)
        sources = {mod: (v.path or mod, v.source) for mod, v in new.items() if v.source is not None}
        return self._check(world, names, sources, new)

    def for_sources(
        self, world: Mapping[str, Entry], sources: Mapping[str, tuple[str, str]]
    ) -> list[crossref.Problem]:
        """Problems if ``sources`` (module -> (path, text)) were loaded; nothing executes.

        Raises SyntaxError for a source that does not parse.
        """
        names = _current_names(world)
        for mod, (_path, source) in sources.items():
            names[mod] = crossref.defined_names(source)
        return self._check(world, names, sources, {})

    def _check(
        self,
        world: Mapping[str, Entry],
        names: dict[str, set[str] | None],
        sources: Mapping[str, tuple[str, str]],
        new: Mapping[str, Version],
    ) -> list[crossref.Problem]:
        known = frozenset(names)
        # Unchanged modules matter only through references into the changed ones.
        words = frozenset(mod.rsplit(".", 1)[-1] for mod in sources)
        refs: dict[str, tuple[str, list[crossref.Ref]]] = {}
        for mod in names:
            if mod in sources:
                path, source = sources[mod]
                version = new.get(mod)
                if version is not None:
                    refs[mod] = (path, self._refs_of(version, known))
                else:
                    refs[mod] = (path, _parse(mod, path, source, known))
                continue
            current = world.get(mod, EMPTY)[0]
            if (
                current is not None
                and current.source is not None
                and crossref.mentions(current.source, words)
            ):
                refs[mod] = (current.path or mod, self._refs_of(current, known))
        return crossref.check(refs, names, set(sources), _before(world, sources))

    def _refs_of(self, version: Version, known: frozenset[str]) -> list[crossref.Ref]:
        cached = self._refs.get(version.vsn)
        if cached is not None and cached[0] == known:
            return cached[1]
        assert version.source is not None
        refs = _parse(version.module, version.path or "", version.source, known)
        self._refs[version.vsn] = (known, refs)
        return refs


def _parse(mod: str, path: str, source: str, known: frozenset[str]) -> list[crossref.Ref]:
    try:
        return crossref.references(mod, source, path.endswith("__init__.py"), known)
    except SyntaxError:
        return []


def _names_of(namespace: Mapping[str, object]) -> set[str] | None:
    return None if "__getattr__" in namespace else set(namespace)


def _current_names(world: Mapping[str, Entry]) -> dict[str, set[str] | None]:
    return {
        mod: _names_of(current.namespace)
        for mod, (current, _old) in list(world.items())
        if current is not None
    }


def _before(world: Mapping[str, Entry], changed: Iterable[str]) -> dict[str, set[str]]:
    result = {}
    for mod in changed:
        current = world.get(mod, EMPTY)[0]
        if current is not None:
            result[mod] = set(current.namespace)
    return result
