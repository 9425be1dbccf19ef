"""The node: the composition root on the top floor, which starts and stops every layer.

Only ``hotmesh/__init__.py``, ``cli/``, ``testing/`` and ``demo/`` import this
package; the layers it starts find their node through ``hotmesh._runtime``.

- ``options``: ``NodeOptions``, the checked arguments of ``start()`` (no I/O);
- ``node``: ``Node``, its public methods and life cycle;
- ``startup``: ``start()``, which opens a node and starts its layers;
- ``router``: the table of message kinds, the ways out, the ``Peers`` of the caller;
- ``extensions``: the layers started with the node (settings, deploy, console);
- ``remote``: the functions other processes call by path. ``hotmesh._node.endpoint_of``,
  ``connected_nodes`` and ``node_info`` are a wire contract: they stay importable here.
"""

from __future__ import annotations

from typing import cast

from hotmesh import _runtime
from hotmesh._node.node import Node
from hotmesh._node.options import DEFAULT_TICK, NodeOptions
from hotmesh._node.remote import connected_nodes, endpoint_of, lost_nodes, node_info
from hotmesh._node.startup import start


def current_node() -> Node:
    """The node the calling code runs on.

    Inside a remote call it is the node running the call; elsewhere it is the
    only node running in this process.

    Raises:
        HotmeshError: no node runs in this process, or several do and the
            caller is not inside a call.
    """
    return cast(Node, _runtime.current_node())


__all__ = [
    "DEFAULT_TICK",
    "Node",
    "NodeOptions",
    "connected_nodes",
    "current_node",
    "endpoint_of",
    "lost_nodes",
    "node_info",
    "start",
]
