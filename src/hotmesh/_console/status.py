"""What ``hotmesh status`` and ``hotmesh who`` show: each node's version, airbag
state, uptime and attached consoles. Functions other processes call by dotted
path (``hotmesh._console.status.cluster_status``); no I/O of their own beyond
the node's calls."""

from __future__ import annotations

import os
import time
from typing import Any

from hotmesh._runtime import current_node


def node_status() -> dict[str, Any]:
    """This node: name, endpoint, pid, uptime (s), version, provisional state and sessions.

    ``provisional_left`` is the seconds left to confirm an upgrade (None when
    confirmed); ``sessions`` are the attached consoles (see ``sessions_here``).
    A version the deploy layer cannot tell is ``"?"`` with ``version_error``.
    """
    node = current_node()
    record: dict[str, Any] = {
        "node": node.name,
        "endpoint": node.endpoint,
        "pid": os.getpid(),
        "uptime": round(time.time() - _started_at(node.incarnation), 3),
    }
    try:
        from hotmesh.deploy.versions import node_status as deploy_status

        deployed = deploy_status()
        record["version"] = deployed["version"]
        record["provisional_left"] = deployed.get("provisional_left")
        record["pending"] = list(deployed.get("pending", []))
    except Exception as exc:  # a broken release must not hide the node
        record.update(version="?", provisional_left=None, pending=[])
        record["version_error"] = f"{type(exc).__name__}: {exc}"
    record["sessions"] = sessions_here()
    return record


def sessions_here() -> list[dict[str, Any]]:
    """The consoles attached to this node: sid, user, host, pid, via, since, busy."""
    from hotmesh._console.server import servers_of

    node = current_node()
    return [s for server in servers_of(node) for s in server.sessions()]


def cluster_status(timeout: float = 5.0) -> list[dict[str, Any]]:
    """``node_status()`` of this node and of every connected one, by name.

    A node that does not answer within ``timeout`` is ``{"node", "unreachable"}``,
    and so is a peer this node lost and keeps redialling (``Node.lost_nodes``:
    ``"down 42 s (connection closed)"``), so that a node down is seen, not left out.
    """
    node = current_node()
    rows = [node_status()]
    peers = node.nodes()
    if peers:
        good, bad = node.multicall(peers, "hotmesh._console.status.node_status", timeout=timeout)
        rows += [value for value in good.values() if isinstance(value, dict)]
        rows += [
            {"node": name, "unreachable": f"{type(e).__name__}: {e}"} for name, e in bad.items()
        ]
    listed = {row.get("node") for row in rows}
    rows += [
        {"node": name, "unreachable": why}
        for name, why in node.lost_nodes().items()
        if name not in listed
    ]
    return sorted(rows, key=lambda row: str(row.get("node")))


def _started_at(incarnation: str) -> float:
    # The incarnation starts with the node's start time in ns, in hex (wire contract).
    try:
        return int(incarnation.split("-", 1)[0], 16) / 1e9
    except ValueError:
        return time.time()
