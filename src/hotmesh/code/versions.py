"""Version identities and the pure bookkeeping of current/old slots (no I/O).

A *world* maps each module name to its ``(current, old)`` pair. The functions
here compute the next world for a load, a delete, a purge or a revert, or
refuse; the server applies the result in one atomic step.
"""

from __future__ import annotations

import marshal
import types
from collections.abc import Iterable, Mapping
from typing import Any

from hotmesh._errors import CodeError, NotPurged
from hotmesh._hashes import sha256
from hotmesh._record import field, record

Entry = tuple["Version | None", "Version | None"]
World = Mapping[str, Entry]

EMPTY: Entry = (None, None)


@record(frozen=True, eq=False)
class Version:
    """One loaded version of a module (Erlang: the code of one module generation).

    ``vsn`` is short and unique per load (first 8 hex digits of the hash, a dash,
    the load counter); ``hash`` is the sha256 of the source text (UTF-8);
    ``namespace`` is the dict the version's functions use as their globals.
    Versions compare by identity: two loads of the same source are two versions.
    """

    module: str
    vsn: str
    hash: str
    path: str | None
    loaded_at: float
    source: str | None
    namespace: dict[str, Any] = field(repr=False)

    def __repr__(self) -> str:
        return f"<Version {self.module} {self.vsn} from {self.path or '<binary>'}>"


def source_hash(source: str | types.CodeType) -> str:
    """The sha256 hex digest identifying a source text (or a code object)."""
    if isinstance(source, types.CodeType):
        return sha256(marshal.dumps(source)).hexdigest()
    return sha256(source.encode("utf-8", "surrogatepass")).hexdigest()


def make_vsn(digest: str, counter: int) -> str:
    """The short version id: ``<first 8 hex of the hash>-<load counter>``."""
    return f"{digest[:8]}-{counter}"


def check_loadable(module: str, entry: Entry) -> None:
    """Refuse with NotPurged when ``module``'s old slot is occupied."""
    old = entry[1]
    if old is not None:
        raise NotPurged(
            f"cannot load {module}: old version {old.vsn} is still loaded; "
            f"run soft_purge({module!r}) or purge({module!r}) first"
        )


def after_load(world: World, new: Mapping[str, Version]) -> dict[str, Entry]:
    """The entries to publish when ``new`` versions become current.

    Each previous current becomes old. Raises NotPurged (nothing computed) if
    any module's old slot is occupied.
    """
    updates: dict[str, Entry] = {}
    for module, version in new.items():
        entry = world.get(module, EMPTY)
        check_loadable(module, entry)
        updates[module] = (version, entry[0])
    return updates


def after_delete(world: World, module: str) -> dict[str, Entry]:
    """The entries to publish when ``module``'s current version becomes old."""
    current, old = world.get(module, EMPTY)
    if current is None:
        raise CodeError(f"cannot delete {module}: it has no current version")
    if old is not None:
        raise NotPurged(
            f"cannot delete {module}: old version {old.vsn} is still loaded; purge it first"
        )
    return {module: (None, current)}


def after_purge(world: World, module: str) -> dict[str, Entry]:
    """The entries to publish when ``module``'s old version is dropped."""
    current, _old = world.get(module, EMPTY)
    return {module: (current, None)}


def after_revert(world: World, modules: Iterable[str]) -> dict[str, Entry]:
    """The entries to publish when each module goes back to its old version.

    The reverted current becomes old; a module without an old version (new in
    the load being reverted) is deleted: its current becomes old and nothing is
    current. Raises CodeError, computing nothing, if a module has no current
    version.
    """
    updates: dict[str, Entry] = {}
    for module in modules:
        current, old = world.get(module, EMPTY)
        if current is None:
            raise CodeError(f"cannot revert {module}: it has no current version")
        updates[module] = (old, current)
    return updates
