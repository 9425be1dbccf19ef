"""What every layer knows of the node it runs on (no I/O).

The bottom of the house: ``NodeLike`` is the face of a running node that the
layers above the transport (rpc dispatch, code shipping, settings, deploy,
services, the console) type against, ``CURRENT_NODE`` is the node running the
current remote call, and the running-node registry answers ``current_node()``
everywhere else. The node itself (``hotmesh._node``) registers here when it
starts; nothing here imports it.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from hotmesh._errors import HotmeshError

Handler = Callable[[bytes, dict[str, Any]], None]
"""A message handler: ``handler(sender, message)`` on the node's I/O thread."""


class NodeLike(Protocol):
    """A running node, as the layers it starts see it (``hotmesh.Node`` is one)."""

    @property
    def name(self) -> str:
        """The full node name, ``name@host``."""
        ...

    @property
    def endpoint(self) -> str:
        """The zmq endpoint the node listens on."""
        ...

    @property
    def incarnation(self) -> str:
        """This run of the node (changes at every start)."""
        ...

    @property
    def state_dir(self) -> Path:
        """The node's own files."""
        ...

    @property
    def options(self) -> Mapping[str, Any]:
        """The ``start()`` arguments, read only."""
        ...

    def nodes(self) -> list[str]:
        """Names of the connected peers, sorted."""
        ...

    def lost_nodes(self) -> dict[str, str]:
        """Peers lost and being redialled: name -> why, with how long ago."""
        ...

    def is_alive(self) -> bool:
        """Whether the node runs."""
        ...

    def endpoint_of(self, name: str) -> str | None:
        """The endpoint of this node or of a connected peer; None when unknown."""
        ...

    def call(
        self,
        target: str,
        fn: str | Callable[..., Any],
        *args: Any,
        timeout: float = ...,
        **kwargs: Any,
    ) -> Any:
        """Run ``fn`` on ``target`` and return its value."""
        ...

    def cast(
        self,
        target: str,
        fn: str | Callable[..., Any],
        *args: Any,
        timeout: float = ...,
        **kwargs: Any,
    ) -> None:
        """Ask ``target`` to run ``fn``; do not wait."""
        ...

    def multicall(
        self,
        targets: Iterable[str],
        fn: str | Callable[..., Any],
        *args: Any,
        timeout: float = ...,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], dict[str, BaseException]]:
        """Run ``fn`` on every target at once; ``(results, bad_nodes)``."""
        ...

    def monitor_nodes(self, callback: Callable[[str, str], None]) -> Callable[[], None]:
        """Call ``callback(event, name)`` on every nodeup/nodedown; returns the stop callable."""
        ...

    def register_handler(self, kind: str, handler: Handler) -> None:
        """Hand messages of type ``kind`` to ``handler`` on the I/O thread."""
        ...

    def send_to(self, sender: bytes, message: dict[str, Any]) -> None:
        """Send ``message`` to a peer or client that sent us a message."""
        ...

    def stop(self) -> None:
        """Leave the mesh and close everything (idempotent)."""
        ...


CURRENT_NODE: contextvars.ContextVar[NodeLike] = contextvars.ContextVar("hotmesh_current_node")
"""The node whose dispatcher runs the current call (read by ``current_node()``)."""

_running: list[NodeLike] = []
_running_lock = threading.Lock()


def add_running(node: NodeLike) -> None:
    """Record ``node`` as running in this process (the node does it when it opens)."""
    with _running_lock:
        _running.append(node)


def remove_running(node: NodeLike) -> None:
    """Forget ``node`` (the node does it when it stops; idempotent)."""
    with _running_lock:
        if node in _running:
            _running.remove(node)


def running_nodes() -> list[NodeLike]:
    """The nodes running in this process, in the order they started."""
    with _running_lock:
        return list(_running)


def current_node() -> NodeLike:
    """The node the calling code runs on.

    Inside a remote call it is the node running the call; elsewhere it is the
    only node running in this process.

    Raises:
        HotmeshError: no node runs in this process, or several do and the
            caller is not inside a call.
    """
    node = CURRENT_NODE.get(None)
    if node is not None:
        return node
    running = running_nodes()
    if len(running) == 1:
        return running[0]
    if not running:
        raise HotmeshError("no hotmesh node is running in this process (call hotmesh.start())")
    names = ", ".join(n.name for n in running)
    raise HotmeshError(f"several nodes run in this process ({names}); use the node object")
