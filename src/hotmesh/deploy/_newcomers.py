"""Watching the mesh for nodes that join behind the fleet's release: on each
nodeup, a node tells the newcomer its own status (a cast), and the node told
judges it against its own and tells its consoles (and the log) when the
sender runs an older release. Mesh I/O through casts, no thread of its own."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from hotmesh._runtime import CURRENT_NODE, NodeLike, current_node
from hotmesh.deploy import _state
from hotmesh.deploy.fleet import fleet_release
from hotmesh.deploy.notices import announce
from hotmesh.deploy.release import release_of
from hotmesh.deploy.versions import release_status

log = logging.getLogger("hotmesh.deploy")
READY_WITHIN = 30.0  # seconds a status cast may travel before the peer drops it
_MET = "hotmesh.deploy._newcomers.met"


def watch(node: NodeLike, deployment: _state.Deployment) -> Callable[[], None]:
    """Tell every node that comes up this node's status; returns the stop callable.

    Each side of a nodeup tells the other (one cast each way over the peer
    links: no thread, no call line, no reply), and each judges what it is
    told, so a fleet of N nodes started at once costs N casts per node, not
    N remote calls with a thread and a connection each. Peers met before this
    node's deploy layer was ready are told now and asked for their status in
    return (they could not judge this node yet, nor it them).
    """

    def on_event(event: str, name: str) -> None:
        if event == "nodeup" and name != node.name:
            _tell(node, name, answer=False)

    stop = node.monitor_nodes(on_event)
    for name in node.nodes():
        _tell(node, name, answer=True)
    return stop


def _tell(node: NodeLike, name: str, *, answer: bool) -> None:
    """Cast this node's status to ``name``, to be judged there (events thread)."""
    token = CURRENT_NODE.set(node)
    try:
        node.cast(name, _MET, release_status(), answer, timeout=READY_WITHIN)
    except Exception as exc:  # the peer may be gone again, or this node stopping
        log.debug("could not tell %s this node's status: %s", name, exc)
    finally:
        CURRENT_NODE.reset(token)


def met(theirs: dict[str, Any], answer: bool = False) -> None:
    """A peer that just came up told us its status (runs here, cast by the peer).

    Flags it when it is behind (see ``behind_notice``); with ``answer``, tells
    it this node's status in return.
    """
    mine = release_status()
    if not mine.get("ready", True):
        return  # this node is still starting: it asks for the status once ready
    text = behind_notice(mine, theirs)
    if text is not None:
        log.warning("%s", text)
        announce(str(mine.get("node")), text)
    sender = theirs.get("node") if isinstance(theirs, dict) else None
    if answer and isinstance(sender, str):
        _tell(current_node(), sender, answer=False)


def behind_notice(mine: dict[str, Any], theirs: dict[str, Any]) -> str | None:
    """The notice when the newcomer ``theirs`` is behind, else None.

    Behind: on another release than the fleet's, judged from this node and
    the newcomer (``fleet_release``: the release of the latest upgrade either
    saw); or on this node's release without the upgrade actions done here
    (restarted onto the new files before its turn, say).
    """
    if not isinstance(theirs, dict):
        return None
    fleet = fleet_release([mine, theirs])
    release = release_of(str(theirs.get("version", "")))
    if fleet is not None and release != fleet:
        return (
            f"deploy: {theirs.get('node')} joined behind the fleet's release: it runs "
            f"{theirs.get('version')}, the fleet {fleet} (upgrade it: nodes_not_at({fleet!r}))"
        )
    if release == release_of(str(mine.get("version", ""))):
        done = set(theirs.get("done") or ())
        missing = [a for a in mine.get("done") or () if a not in done]
        missing += [a for a in theirs.get("pending") or () if a not in missing]
        if missing:
            return (
                f"deploy: {theirs.get('node')} joined on {release} with upgrade actions "
                f"pending: {', '.join(missing)} (upgrade it: nodes_not_at({release!r}))"
            )
    return None
