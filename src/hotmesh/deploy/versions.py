"""Which version every node runs, and whether it is really there:
``node_version``, ``node_status``, ``node_versions``, ``nodes_at``,
``nodes_not_at``. Reads this node's deploy records; calls other nodes over the mesh."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from hotmesh import code
from hotmesh._errors import CodeError, DeployError
from hotmesh.deploy import _state
from hotmesh.deploy.action_log import record_key
from hotmesh.deploy.release import parse_manifest, version_string

if TYPE_CHECKING:
    from hotmesh.deploy.fleet import Versions


def node_version() -> str:
    """This node's version: ``"<release>+<fingerprint>"``, e.g. ``"v2+3fa9c1d2"``.

    The release part comes from the manifest of the release the node runs; the
    fingerprint identifies the source of every loaded managed module and the
    upgrade actions of the release done on this node, so two nodes with the
    same version run the same code and ran the same actions.
    """
    return _state.current().version()


def node_status() -> dict[str, Any]:
    """What this node knows of its own version (a plain dict: it travels).

    Keys: ``node``, ``version``, ``done`` (ids of its release's upgrade
    actions done here), ``pending`` (its manifest's actions not done here, with
    why when one raised as the node started, and any started but never
    finished), ``provisional_left`` (seconds left in an
    unconfirmed airbag window, or None), ``drift`` (managed modules modified
    on disk but not loaded), ``upgraded_at`` (when an upgrade last changed
    this node, or None since it started), ``ready`` (False while the node is
    still starting: its release is not read yet).
    """
    # The airbag: asked for here (and by upgrades), not by every node's start.
    from hotmesh.deploy.airbag import airbag_for

    dep = _state.current()
    status = release_status(dep)
    record = airbag_for(dep).pending()
    left = None
    if record is not None:
        left = max(0.0, float(record.get("deadline", 0.0)) - time.time())
    try:
        drift = sorted(code.modified_modules())
    except CodeError:
        drift = []
    status.update(provisional_left=left, drift=drift, upgraded_at=dep.upgraded_at)
    return status


def release_status(dep: _state.Deployment | None = None) -> dict[str, Any]:
    """The part of ``node_status()`` that says which release a node runs and how
    far: ``node``, ``version``, ``done``, ``pending``, ``ready`` and
    ``upgraded_at`` (what a fleet's release is judged by).

    Without the airbag's file or a look at every managed module's source on
    disk (``drift``): what a node tells every newcomer, and judges them by,
    as a fleet meets.
    """
    dep = dep or _state.current()
    done, unfinished = _action_records(dep)
    pending = [
        f"{a} (failed at start: {dep.failed_at_start[a]})" if a in dep.failed_at_start else a
        for a in _manifest_actions(dep)
        if a not in done and a not in unfinished
    ]
    pending += [f"{a} (started, never finished)" for a in unfinished]
    return {
        "node": dep.node_name,
        "version": version_string(dep.release, _state.managed_hashes(), done),
        "done": done,
        "pending": pending,
        "ready": dep.started,
        "upgraded_at": dep.upgraded_at,
    }


def _action_records(dep: _state.Deployment) -> tuple[list[str], list[str]]:
    """(done, started-but-never-finished) action ids of the release ``dep`` runs."""
    prefix = record_key(dep.release, "")
    done: list[str] = []
    unfinished: list[str] = []
    for key, record in sorted(dep.action_log().records().items()):
        if key.startswith(prefix):
            target = done if record.get("state") == "done" else unfinished
            target.append(key[len(prefix) :])
    return done, unfinished


def _manifest_actions(dep: _state.Deployment) -> list[str]:
    """Ids of the upgrade actions the running release's manifest declares."""
    text = dep.manifest_text
    if not text:
        return []
    cached = _declared.get(text)
    if cached is None:
        try:
            cached = tuple(a.id for a in parse_manifest(text).actions)
        except DeployError:
            cached = ()
        _declared.clear()  # a node runs one release at a time
        _declared[text] = cached
    return list(cached)


# Manifest text -> the ids of the actions it declares: each newcomer is judged
# by them, and a fleet starting together brings one per peer.
_declared: dict[str, tuple[str, ...]] = {}


def node_versions(nodes: Iterable[str] | None = None, *, timeout: float = 5.0) -> Versions:
    """Every node's version and whether it is really there, printed as a table.

    For this node and every connected one (or ``nodes``), asked in parallel:
    ``{node: NodeVersion}`` where ``NodeVersion`` is the version string with
    ``.pending`` (upgrade actions of its release not done there: its
    manifest's, and those other nodes of the release ran), ``.provisional``
    (seconds left to confirm, or None), ``.drift`` (modules modified on disk
    but not loaded) and ``.behind`` (the fleet's release, when it runs
    another). A node that does not answer within ``timeout`` is
    ``Unreachable(reason)``; this call never raises for it.

    Example::

        >>> node_versions()
        node       version      airbag                  pending actions  drift  notes
        app1@web1  v2+3fa9c1d2  provisional, 87 s left  -                -
        app2@web1  v2+77e0a1b3  confirmed               2026-11-24-fix   -
        app3@web2  -            -                       -                -      unreachable: ...
    """
    from hotmesh.deploy.fleet import versions_from  # not loaded by a node's start

    return versions_from(node_statuses(nodes, per_node_timeout=timeout))


def node_statuses(
    nodes: Iterable[str] | None = None, *, per_node_timeout: float = 5.0
) -> dict[str, dict[str, Any]]:
    """``node_status()`` of this node and every connected one (or ``nodes``), in parallel.

    Plain values (they travel: ``hotmesh versions`` asks a node for them): a
    node that does not answer is ``{"unreachable": reason}``. With ``nodes``
    None, so is a peer this node lost and keeps redialling (``Node.lost_nodes``):
    the fleet's table shows a node down instead of leaving it out.
    """
    from hotmesh._rpc.fanout import resolve_targets, run_on, this_node

    targets = resolve_targets("all" if nodes is None else list(nodes))
    outcome = run_on(targets, "hotmesh.deploy.versions.node_status", timeout=per_node_timeout)
    statuses = {
        name: value if ok and isinstance(value, dict) else {"unreachable": _why(ok, value)}
        for name, (ok, value) in outcome.items()
    }
    if nodes is None:
        node = this_node()
        lost = {n: {"unreachable": why} for n, why in node.lost_nodes().items()}
        if lost.keys() - statuses.keys():
            # This node first, then its peers by name, the lost ones among them.
            merged = {**lost, **statuses}
            others = sorted(n for n in merged if n != node.name)
            statuses = {n: merged[n] for n in [node.name, *others] if n in merged}
    return statuses


def _why(ok: bool, value: Any) -> str:
    from hotmesh._rpc.fanout import reason_of

    return reason_of(value) if not ok else f"answered {type(value).__name__}, not a status"


def nodes_at(vsn: str, count: int | None = None, *, timeout: float = 5.0) -> list[str]:
    """Names of the nodes running ``vsn`` (all of them, or the first ``count``).

    ``vsn`` is a release (``"v1"``: any fingerprint) or a full version string
    (``"v1+77e0a1b3"``). A node with upgrade actions of that release still
    pending is not at it. Unreachable nodes are left out. The order is stable:
    this node first, then its peers by name.
    """
    if count is not None and count < 0:
        raise ValueError(f"count must be None or >= 0, not {count}")
    from hotmesh.deploy.fleet import NodeVersion

    found = [
        name
        for name, version in node_versions(timeout=timeout).items()
        if isinstance(version, NodeVersion) and version.is_at(vsn)
    ]
    return found if count is None else found[:count]


def nodes_not_at(vsn: str, *, timeout: float = 5.0) -> list[str]:
    """Names of the reachable nodes not (fully) at ``vsn``: what a rollout to it must upgrade.

    A node on another release, or on ``vsn`` with some of its upgrade actions
    pending (restarted onto the new files before its turn, say). Unreachable
    nodes are left out.
    """
    from hotmesh.deploy.fleet import NodeVersion

    return [
        name
        for name, version in node_versions(timeout=timeout).items()
        if isinstance(version, NodeVersion) and not version.is_at(vsn)
    ]
