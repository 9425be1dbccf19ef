"""Which version every node runs: ``node_version``, ``node_versions``,
``nodes_at``. Calls other nodes over the mesh."""

from __future__ import annotations

from collections.abc import Iterable

from hotmesh.deploy import _state
from hotmesh.deploy.fanout import Unreachable, reason_of, resolve_targets, run_on
from hotmesh.deploy.release import matches


def node_version() -> str:
    """This node's version: ``"<release>+<fingerprint>"``, e.g. ``"v2+3fa9c1d2"``.

    The release part comes from the manifest of the release the node runs; the
    fingerprint identifies the source of every loaded managed module, so two
    nodes with the same fingerprint run the same code.
    """
    return _state.current().version()


def node_versions(
    nodes: Iterable[str] | None = None, *, timeout: float = 5.0
) -> dict[str, str | Unreachable]:
    """``{node: version}`` for this node and every connected one (or ``nodes``).

    A node that does not answer within ``timeout`` is given as
    ``Unreachable(reason)`` instead of a version; this call never raises for it.

    Example::

        >>> node_versions()
        {'app1@web1': 'v2+3fa9c1d2', 'app2@web1': 'v1+77e0a1b3',
         'app3@web2': Unreachable('node app3@web2 is down')}
    """
    targets = resolve_targets("all" if nodes is None else list(nodes))
    outcome = run_on(targets, "hotmesh.deploy.versions.node_version", timeout=timeout)
    return {
        name: value if ok else Unreachable(reason_of(value))
        for name, (ok, value) in outcome.items()
    }


def nodes_at(vsn: str, count: int | None = None, *, timeout: float = 5.0) -> list[str]:
    """Names of the nodes running ``vsn`` (all of them, or the first ``count``).

    ``vsn`` is a release (``"v1"``: any fingerprint) or a full version string
    (``"v1+77e0a1b3"``). Unreachable nodes are left out. The order is stable:
    this node first, then its peers by name.
    """
    if count is not None and count < 0:
        raise ValueError(f"count must be None or >= 0, not {count}")
    found = [
        name
        for name, version in node_versions(timeout=timeout).items()
        if isinstance(version, str) and matches(version, vsn)
    ]
    return found if count is None else found[:count]
