"""Watching the mesh for nodes that join behind the fleet's release: at each
nodeup, one node of the pair (its *teller*) casts its status to the other,
which judges both sides (the teller's status against its own, and its own as
the teller would judge it) and tells its consoles (and the log) when a side
runs an older release. Mesh I/O through casts, no thread of its own."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from hotmesh._hashes import blake2b
from hotmesh._runtime import CURRENT_NODE, NodeLike, current_node
from hotmesh.deploy import _state
from hotmesh.deploy.notices import announce
from hotmesh.deploy.release import fleet_release, release_of
from hotmesh.deploy.versions import release_status

log = logging.getLogger("hotmesh.deploy")
READY_WITHIN = 30.0  # seconds a status cast may travel before the peer drops it
_MET = "hotmesh.deploy._newcomers.met"
_FLAGGED = "hotmesh.deploy._newcomers.flagged"


def teller(a: str, b: str) -> str:
    """Which of two nodes tells the other its status when they meet: either may
    ask, both get the same answer, and each node tells about half of its peers."""
    first, second = sorted((a, b))
    flip = blake2b(f"{first}\0{second}\0status".encode(), digest_size=1).digest()[0] & 1
    return second if flip else first


def watch(node: NodeLike, deployment: _state.Deployment) -> Callable[[], None]:
    """Tell the nodes that come up this node's status; returns the stop callable.

    At each nodeup, only the pair's ``teller`` casts (one cast per pair of
    nodes: no thread, no call line, no reply), and the node told judges both
    sides, so a fleet of N nodes started at once costs N/2 casts per node.
    Peers met before this node's deploy layer was ready are told now, and
    asked for their status in return (they could not judge this node yet,
    nor it them).
    """

    def on_event(event: str, name: str) -> None:
        if event == "nodeup" and name != node.name and teller(node.name, name) == node.name:
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

    Flags it when it is behind (see ``behind_notice``). With ``answer``, tells
    it this node's status in return, to be judged there; without, the peer
    hears nothing more unless it would flag this node: then it gets the
    notice it would have given (``flagged``), judged here from the same two
    statuses.
    """
    mine = release_status()
    if not mine.get("ready", True):
        return  # this node is still starting: it asks for the status once ready
    _flag(str(mine.get("node")), behind_notice(mine, theirs))
    sender = theirs.get("node") if isinstance(theirs, dict) else None
    if not isinstance(sender, str):
        return
    node = current_node()
    if answer:
        _tell(node, sender, answer=False)
        return
    text = behind_notice(theirs, mine)
    if text is not None:
        try:
            node.cast(sender, _FLAGGED, text, timeout=READY_WITHIN)
        except Exception as exc:
            log.debug("could not tell %s that this node is behind: %s", sender, exc)


def flagged(text: str) -> None:
    """A peer found this node's view of it behind (runs here, cast by the peer,
    which judged from this node's status and its own)."""
    _flag(current_node().name, text)


def _flag(node: str, text: str | None) -> None:
    if text is not None:
        log.warning("%s", text)
        announce(node, text)


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
