"""Watching the mesh for nodes that join behind the fleet's release: on each
nodeup, ask the newcomer for its status and tell this node's consoles (and the
log) when it runs an older release. Mesh I/O on a thread of its own."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from hotmesh._runtime import NodeLike
from hotmesh.deploy import _state
from hotmesh.deploy.fleet import fleet_release
from hotmesh.deploy.notices import announce
from hotmesh.deploy.release import release_of

log = logging.getLogger("hotmesh.deploy")
READY_WITHIN = 30.0  # seconds a newcomer has to finish starting before it is checked


def watch(node: NodeLike, deployment: _state.Deployment) -> Callable[[], None]:
    """Check every node that comes up against this node's release; returns the stop callable."""

    def on_event(event: str, name: str) -> None:
        if event == "nodeup" and name != node.name:
            # Off the events thread: the check is a remote call.
            threading.Thread(
                target=_check,
                args=(node, deployment, name),
                name="hotmesh-deploy-nodeup",
                daemon=True,
            ).start()

    return node.monitor_nodes(on_event)


def _check(node: NodeLike, deployment: _state.Deployment, name: str) -> None:
    from hotmesh.deploy.versions import node_status

    # A node is up in the mesh before its deploy layer has read its release.
    deadline = time.monotonic() + READY_WITHIN
    try:
        while True:
            theirs = node.call(name, "hotmesh.deploy.versions.node_status", timeout=5.0)
            if not isinstance(theirs, dict) or theirs.get("ready", True):
                break
            if time.monotonic() > deadline:
                return
            time.sleep(0.2)  # polling a remote state: no event to wait on
        mine = node_status()
    except Exception as exc:  # the newcomer may be gone again: nothing to flag
        log.debug("could not ask %s for its version: %s", name, exc)
        return
    text = behind_notice(mine, theirs)
    if text is not None:
        log.warning("%s", text)
        announce(deployment.node_name, text)


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
