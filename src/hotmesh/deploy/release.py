"""Release manifests (``hotmesh-release.toml``) and the node version string
(release version + fingerprint of the loaded managed code). Reads the manifest
file; everything else is pure."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hotmesh._errors import DeployError
from hotmesh._hashes import sha256
from hotmesh._record import field, record

MANIFEST_NAME = "hotmesh-release.toml"
UNRELEASED = "unreleased"
ACTION_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
"""What an upgrade action id may be: a letter or digit, then letters, digits and ``_.:-``."""
_CALL_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@record(frozen=True)
class ManifestAction:
    """An upgrade action declared by the release: ``id``, ``call`` ("pkg.mod:function",
    or None) and ``settings`` (key -> value set on the node before the call)."""

    id: str
    call: str | None
    settings: Mapping[str, Any] = field(default_factory=dict)


@record(frozen=True)
class Manifest:
    """What ``hotmesh-release.toml`` holds.

    ``version`` names the release (``"v2"``); ``packages`` are the managed
    top-level packages the release ships; ``actions`` are its upgrade actions.
    """

    version: str
    packages: tuple[str, ...]
    actions: tuple[ManifestAction, ...] = field(default=())


def parse_manifest(text: str, *, source: str = MANIFEST_NAME) -> Manifest:
    """Parse the text of a release manifest.

    Raises:
        DeployError: not TOML, or a missing/mistyped key (the message names it).
    """
    import tomllib  # only nodes started on a release read a manifest

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DeployError(f"{source}: not valid TOML: {exc}") from exc
    version = data.get("version")
    if not isinstance(version, str) or not version.strip() or "+" in version:
        raise DeployError(f"{source}: 'version' must be a non-empty string without '+'")
    packages = data.get("packages", [])
    if not isinstance(packages, list) or not all(
        isinstance(p, str) and p.isidentifier() for p in packages
    ):
        raise DeployError(f"{source}: 'packages' must be a list of top-level package names")
    actions = []
    for entry in data.get("actions", []):
        if not isinstance(entry, dict):
            raise DeployError(f"{source}: each [[actions]] entry must be a table")
        actions.append(_action(entry, source))
    unknown = set(data) - {"version", "packages", "actions"}
    if unknown:
        raise DeployError(f"{source}: unknown keys {sorted(unknown)}")
    return Manifest(version.strip(), tuple(packages), tuple(actions))


def _action(entry: dict[str, Any], source: str) -> ManifestAction:
    action_id, call = entry.get("id"), entry.get("call")
    if not isinstance(action_id, str) or not ACTION_ID_RE.match(action_id):
        raise DeployError(f"{source}: action id {action_id!r} is not a valid id")
    unknown = set(entry) - {"id", "call", "settings"}
    if unknown:
        raise DeployError(f"{source}: action {action_id}: unknown keys {sorted(unknown)}")
    if call is not None and (not isinstance(call, str) or not _CALL_RE.match(call)):
        raise DeployError(f"{source}: action {action_id}: 'call' must be 'pkg.module:function'")
    values = entry.get("settings", {})
    if call is None and not values:
        raise DeployError(f"{source}: action {action_id}: give it a 'call', 'settings' or both")
    return ManifestAction(action_id, call, check_settings(f"{source}: action {action_id}", values))


def read_manifest(release_dir: str | Path) -> Manifest:
    """Read ``<release_dir>/hotmesh-release.toml``, following a ``current`` symlink.

    The path is opened as given, so a symlinked release directory is resolved
    afresh on every call (a switched symlink is seen at the next upgrade).

    Raises:
        DeployError: the file is missing or invalid.
    """
    path = Path(release_dir) / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DeployError(f"cannot read release manifest {path}: {exc.strerror}") from exc
    return parse_manifest(text, source=str(path))


def fingerprint(hashes: Mapping[str, str], actions: Iterable[str] = ()) -> str:
    """Eight hex digits identifying loaded modules (by source hash) and actions done.

    Depends only on the (module, hash) pairs and the set of action ids, not on
    their order: two nodes that loaded the same code and ran the same upgrade
    actions get the same fingerprint. Without actions it is the fingerprint of
    the code alone.
    """
    done = frozenset(actions)
    last = _last_fingerprint
    # Asked at every status a node gives (each nodeup while a fleet meets):
    # comparing the mapping with the last one costs a tenth of hashing it
    # again (300 modules: ~10 against ~110 us).
    if last is not None and last[1] == done and last[0] == hashes:
        return last[2]
    digest = sha256()
    for module in sorted(hashes):
        digest.update(f"{module}\0{hashes[module]}\n".encode())
    for action in sorted(done):
        digest.update(f"action\0{action}\n".encode())
    text = digest.hexdigest()[:8]
    _remember_fingerprint(dict(hashes), done, text)
    return text


_last_fingerprint: tuple[dict[str, str], frozenset[str], str] | None = None


def _remember_fingerprint(hashes: dict[str, str], done: frozenset[str], text: str) -> None:
    global _last_fingerprint
    _last_fingerprint = (hashes, done, text)  # one assignment: threads see all or nothing


def version_string(
    release: str | None, hashes: Mapping[str, str], actions: Iterable[str] = ()
) -> str:
    """``"<release>+<fingerprint>"``, e.g. ``"v2+3fa9c1d2"`` (``unreleased`` without a release).

    ``actions`` are the ids of the release's upgrade actions done on the node:
    a node that has not run them has another version.
    """
    return f"{release or UNRELEASED}+{fingerprint(hashes, actions)}"


def release_of(version: str) -> str:
    """The release part of a version string (``"v2+3fa9c1d2"`` -> ``"v2"``)."""
    return version.split("+", 1)[0]


def matches(version: str, wanted: str) -> bool:
    """True when ``version`` is ``wanted`` exactly or its release part is ``wanted``."""
    return version == wanted or ("+" not in wanted and release_of(version) == wanted)


def fleet_release(statuses: Iterable[Mapping[str, Any]]) -> str | None:
    """The release of the latest upgrade seen; else the one most nodes run (None on a tie)."""
    statuses = list(statuses)
    upgraded = [s for s in statuses if isinstance(s.get("upgraded_at"), int | float)]
    if upgraded:
        latest = max(upgraded, key=lambda s: s["upgraded_at"])
        return release_of(str(latest.get("version", "")))
    counts = Counter(release_of(str(s.get("version", ""))) for s in statuses).most_common(2)
    if not counts or (len(counts) == 2 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]


def check_settings(owner: str, values: object) -> dict[str, Any]:
    """``values`` as a settings dict (non-empty string keys, JSON values).

    Raises:
        DeployError: not a mapping, a bad key, or a value JSON cannot hold.
    """
    if not isinstance(values, Mapping):
        raise DeployError(f"{owner}: settings must be a table of key = value")
    for key, value in values.items():
        if not isinstance(key, str) or not key:
            raise DeployError(f"{owner}: setting key {key!r} must be a non-empty string")
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise DeployError(f"{owner}: setting {key} = {value!r} is not a JSON value") from None
    return dict(values)
