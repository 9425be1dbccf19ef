"""Functions other processes call by dotted path (no I/O of their own).

A wire contract: clients and peers name them as ``"hotmesh._node.endpoint_of"``,
``"hotmesh._node.connected_nodes"`` and ``"hotmesh._node.node_info"``
(``hotmesh._node`` re-exports them), so they keep those paths and signatures.
Each answers for the node running the call (``current_node()``).
"""

from __future__ import annotations

import os
from typing import Any

from hotmesh._runtime import current_node


def endpoint_of(name: str) -> str | None:
    """The endpoint of node ``name`` as the current node knows it (None if unknown)."""
    return current_node().endpoint_of(name)


def connected_nodes() -> list[str]:
    """The peers of the current node."""
    return current_node().nodes()


def lost_nodes() -> dict[str, str]:
    """The peers the current node lost and keeps redialling (``Node.lost_nodes``)."""
    return current_node().lost_nodes()


def node_info() -> dict[str, Any]:
    """Name, endpoint, pid, incarnation and peers of the current node."""
    node = current_node()
    return {
        "name": node.name,
        "endpoint": node.endpoint,
        "pid": os.getpid(),
        "incarnation": node.incarnation,
        "nodes": node.nodes(),
    }
