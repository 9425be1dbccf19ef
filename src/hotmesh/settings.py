"""Settings and feature switches, changed on the running nodes and in each
node's settings file in one step, so a restart keeps them. File I/O under the
node's state dir; calls other nodes over the mesh.

Example::

    from hotmesh import settings
    settings.set("pool.size", 32, nodes="all")        # every node, live and on disk
    settings.enable("new_parser", share=0.25)          # a stable quarter of the nodes
    if settings.feature("new_parser"): ...
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hotmesh._files import append_line, atomic_write_json, read_json
from hotmesh._hashes import sha256
from hotmesh._record import field, record
from hotmesh._runtime import NodeLike

log = logging.getLogger("hotmesh.settings")

FILE_NAME = "settings.json"
FEATURE_PREFIX = "feature."

_lock = threading.RLock()  # the values in memory: held for microseconds
_write_lock = threading.RLock()  # one change at a time, file and memory (held across fsyncs)
_values: dict[str, Any] = {}
_path: Path | None = None
_node_name = "local"


def get(key: str, default: Any = None) -> Any:
    """The value of ``key`` on this node, or ``default`` when it is not set."""
    with _lock:
        return _values.get(key, default)


def snapshot() -> dict[str, Any]:
    """Every setting on this node (a copy)."""
    with _lock:
        return dict(_values)


def feature(name: str) -> bool:
    """True when the feature switch ``name`` is on for this node."""
    return bool(get(FEATURE_PREFIX + name, False))


def share_point(node: str, key: str) -> float:
    """Where ``node`` falls in [0, 1) for ``key``: stable across runs and hosts.

    A node is in a share ``s`` of the nodes when its point is below ``s``, so
    growing a share from 0.1 to 0.5 keeps the first 10 % and adds to them.
    """
    digest = sha256(f"{key}\0{node}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_share(node: str, key: str, share: float | None) -> bool:
    """True when ``node`` is among the ``share`` of nodes chosen for ``key`` (None: all)."""
    return share is None or share_point(node, key) < share


@record
class Applied:
    """The outcome of a settings change: the value each node now has, and failures.

    ``values`` maps a node to its new value (``None`` where the key was unset,
    e.g. outside a share); ``failed`` maps a node to why it did not change.
    """

    key: str
    values: dict[str, Any] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every target node applied the change."""
        return not self.failed

    def __repr__(self) -> str:
        on = sorted(n for n, v in self.values.items() if v is not None)
        off = sorted(n for n, v in self.values.items() if v is None)
        parts = [f"{self.key}: set on {len(on)} node(s)"]
        if off:
            parts.append(f"unset on {len(off)}")
        if self.failed:
            parts.append("FAILED on " + ", ".join(f"{n} ({r})" for n, r in self.failed.items()))
        return f"<settings {', '.join(parts)}>"


def set(  # shadows the builtin on purpose: settings.set(key, value)
    key: str,
    value: Any,
    nodes: str | Iterable[str] | None = None,
    share: float | None = None,
    *,
    timeout: float = 10.0,
) -> Applied:
    """Set ``key`` to ``value`` on the target nodes, live and in their settings file.

    On each node the settings file is replaced atomically (temp + fsync +
    rename) before the running value changes, so a node never runs a value it
    would lose on restart. ``value`` must be JSON-serialisable.

    Args:
        nodes: None (this node), ``"all"`` (this node and every connected
            one) or a list of node names.
        share: a fraction in [0, 1]: only a stable share of the targets (by a
            hash of node name and key) gets the value; the others have the
            key unset.

    Returns:
        ``Applied``: the value each node now has and the nodes that failed.

    Raises:
        TypeError: ``value`` is not JSON-serialisable, ``key`` not a string.
        ValueError: ``share`` outside [0, 1].
    """
    _check_key(key)
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"setting {key}: value {value!r} is not JSON-serialisable") from exc
    if share is not None and not (isinstance(share, int | float) and 0.0 <= share <= 1.0):
        raise ValueError(f"share must be a fraction between 0 and 1, not {share!r}")
    return _change(key, value, nodes, share, timeout)


def unset(key: str, nodes: str | Iterable[str] | None = None, *, timeout: float = 10.0) -> Applied:
    """Remove ``key`` on the target nodes, live and on disk (see ``set``)."""
    _check_key(key)
    return _change(key, None, nodes, 0.0, timeout)


def enable(
    name: str, nodes: str | Iterable[str] | None = "all", share: float | None = None
) -> Applied:
    """Turn the feature switch ``name`` on (for a stable ``share`` of ``nodes``)."""
    return set(FEATURE_PREFIX + name, True, nodes, share)


def disable(name: str, nodes: str | Iterable[str] | None = "all") -> Applied:
    """Turn the feature switch ``name`` off on ``nodes``."""
    return unset(FEATURE_PREFIX + name, nodes)


def _check_key(key: object) -> None:
    if not isinstance(key, str) or not key:
        raise TypeError(f"setting key must be a non-empty string, not {key!r}")


def _change(
    key: str, value: Any, nodes: str | Iterable[str] | None, share: float | None, timeout: float
) -> Applied:
    applied = Applied(key)
    if nodes is None:
        name = _current_name()
        wanted = in_share(name, key, share)
        apply_local(key, wanted, value, name)
        applied.values[name] = value if wanted else None
        return applied
    from hotmesh._rpc.fanout import reason_of, resolve_targets, run_on, this_node

    origin = this_node().name
    targets = resolve_targets(nodes)
    chosen = {t: in_share(t, key, share) for t in targets}
    outcome = _run_each(targets, chosen, key, value, origin, timeout, run_on)
    for name, (ok, result) in outcome.items():
        if ok:
            applied.values[name] = value if chosen[name] else None
        else:
            applied.failed[name] = reason_of(result)
    return applied


def _run_each(
    targets: list[str],
    chosen: dict[str, bool],
    key: str,
    value: Any,
    origin: str,
    timeout: float,
    run_on: Callable[..., dict[str, tuple[bool, Any]]],
) -> dict[str, tuple[bool, Any]]:
    on = [t for t in targets if chosen[t]]
    off = [t for t in targets if not chosen[t]]
    outcome = run_on(on, "hotmesh.settings.apply_local", key, True, value, origin, timeout=timeout)
    outcome |= run_on(
        off, "hotmesh.settings.apply_local", key, False, None, origin, timeout=timeout
    )
    return {t: outcome[t] for t in targets}


def _current_name() -> str:
    return _node_name


def apply_local(key: str, present: bool, value: Any, origin: str) -> bool:
    """Set (``present``) or unset ``key`` on this node: file first, then memory.

    Called on each target by ``set``/``unset``. Returns True if the value changed.
    Readers (``get``) are not held up while the file is written: they see the
    value before until the file is on disk.
    """
    with _write_lock:
        with _lock:
            before = _values.get(key, _MISSING)
            after = dict(_values)
        if present:
            after[key] = value
        else:
            after.pop(key, None)
        if _path is not None:
            atomic_write_json(_path, after)
        with _lock:
            _values.clear()
            _values.update(after)
        changed: bool = before != (value if present else _MISSING)
        if _path is not None and changed:
            entry = {"at": time.time(), "key": key, "by": origin, "set": present, "value": value}
            append_line(_path.with_name("settings-history.jsonl"), json.dumps(entry))
    if changed:
        shown = repr(value) if present else "<unset>"
        old = "<unset>" if before is _MISSING else repr(before)
        log.info("setting %s = %s on %s (was %s; by %s)", key, shown, _node_name, old, origin)
    return changed


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


def load(path: Path, node_name: str = "local") -> dict[str, Any]:
    """Bind this process's settings to the file ``path`` and read it (node start).

    Raises:
        ConfigError: the file is not a JSON object.
    """
    from hotmesh._errors import ConfigError

    global _path, _node_name
    try:
        data = read_json(path, {})
    except ValueError as exc:
        raise ConfigError(f"settings file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"settings file {path} must hold a JSON object")
    with _write_lock, _lock:
        _path, _node_name = path, node_name
        _values.clear()
        _values.update(data)
    return dict(data)


def _start(node: NodeLike) -> Callable[[], None]:
    """Node extension: load the node's settings file; the stop callable unbinds it."""
    load(Path(node.state_dir) / FILE_NAME, node.name)

    def stop() -> None:
        global _path
        with _write_lock, _lock:
            if _path == Path(node.state_dir) / FILE_NAME:
                _path = None
                _values.clear()

    return stop
