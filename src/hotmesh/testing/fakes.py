"""An in-process node and client connection for unit tests without sockets (threads only).

``FakeNode`` has the face of a running node (``hotmesh._runtime.NodeLike``):
the layers a node starts (the console server, for one) register their message
handlers on it and answer through ``send_to``, and it runs the handlers on its
own "I/O" thread, as a node does. ``FakeNode.connect()`` gives a ``FakeLink``,
the client end, with the ``send``/``recv``/``close`` of
``hotmesh._mesh.client.Connection``.

Example::

    node = FakeNode("alpha@box", tmp_path / "alpha")
    stop = start_console(node)
    client = ConsoleClient(node.connect())
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hotmesh._console.client import Link
    from hotmesh._runtime import Handler, NodeLike

Message = dict[str, Any]


class FakeNode:
    """A node without sockets: dispatches client messages to registered handlers on one thread.

    ``call`` and ``cast`` do not run anything: ``call`` returns
    ``("called", target, fn, args)`` and records nothing else; ``nodes()`` is
    empty. ``stopped`` tells whether ``stop()`` was called; ``close()`` ends
    the thread.
    """

    def __init__(self, name: str, state_dir: Path, *, options: Mapping[str, Any] = {}) -> None:
        self.name = name
        self.state_dir = state_dir
        self.endpoint = "inproc://" + name
        self.incarnation = "fake"
        self.options: Mapping[str, Any] = MappingProxyType(dict(options))
        self.handlers: dict[str, Handler] = {}
        self.outboxes: dict[bytes, queue.SimpleQueue[Message]] = {}
        self.stopped = False
        self.monitors: list[Callable[[str, str], None]] = []
        self._inbox: queue.SimpleQueue[tuple[bytes, Message] | None] = queue.SimpleQueue()
        self._ids = itertools.count(1)
        self._thread = threading.Thread(target=self._io, name="fake-io", daemon=True)
        self._thread.start()

    # ---- NodeLike --------------------------------------------------------
    def nodes(self) -> list[str]:
        """No peers."""
        return []

    def lost_nodes(self) -> dict[str, str]:
        """No peers lost."""
        return {}

    def is_alive(self) -> bool:
        """True until ``stop()``."""
        return not self.stopped

    def endpoint_of(self, name: str) -> str | None:
        """This node's endpoint for its own name, else None."""
        return self.endpoint if name == self.name else None

    def call(
        self,
        target: str,
        fn: str | Callable[..., Any],
        *args: Any,
        timeout: float = 5.0,
        **kwargs: Any,
    ) -> Any:
        """``("called", target, fn, args)``: what would have run, not run."""
        return ("called", target, fn, args)

    def cast(
        self,
        target: str,
        fn: str | Callable[..., Any],
        *args: Any,
        timeout: float = 5.0,
        **kwargs: Any,
    ) -> None:
        """Nothing runs."""

    def monitor_nodes(self, callback: Callable[[str, str], None]) -> Callable[[], None]:
        """Keep ``callback`` in ``monitors`` (a fake mesh has no events of its own)."""
        self.monitors.append(callback)

        def stop() -> None:
            if callback in self.monitors:
                self.monitors.remove(callback)

        return stop

    def multicall(
        self,
        targets: Iterable[str],
        fn: str | Callable[..., Any],
        *args: Any,
        timeout: float = 5.0,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], dict[str, BaseException]]:
        """``call`` on every target; no target fails."""
        return {t: self.call(t, fn, *args) for t in targets}, {}

    def register_handler(self, kind: str, handler: Handler) -> None:
        """Hand messages of type ``kind`` to ``handler`` on this node's thread."""
        self.handlers[kind] = handler

    def send_to(self, sender: bytes, message: Message) -> None:
        """Put a copy of ``message`` in the outbox of the link ``sender``."""
        self.outboxes[sender].put(dict(message))

    def stop(self) -> None:
        """Record that the node was asked to stop (the thread keeps running)."""
        self.stopped = True

    # ---- for the test ----------------------------------------------------
    def connect(self) -> FakeLink:
        """A new client connection to this node."""
        sender = f"client-{next(self._ids)}".encode()
        self.outboxes[sender] = queue.SimpleQueue()
        return FakeLink(self, sender)

    def deliver(self, sender: bytes, message: Message) -> None:
        """Queue a copy of ``message`` from ``sender`` for the node's thread."""
        self._inbox.put((sender, dict(message)))

    def close(self) -> None:
        """End the node's thread (waits up to 2 s)."""
        self._inbox.put(None)
        self._thread.join(timeout=2)

    def _io(self) -> None:
        while (item := self._inbox.get()) is not None:
            sender, message = item
            self.handlers[message["t"]](sender, message)


class FakeLink:
    """The client end of a ``FakeNode``: ``send``/``recv``/``close`` like ``Connection``.

    ``sent`` holds every message sent; while ``mute`` is true they do not reach
    the node (a connection that silently lost its way).
    """

    def __init__(self, node: FakeNode, sender: bytes) -> None:
        self.node = node
        self.sender = sender
        self.sent: list[Message] = []
        self.mute = False

    def send(self, message: Message) -> None:
        """Record ``message`` and, unless muted, deliver it to the node."""
        self.sent.append(message)
        if not self.mute:
            self.node.deliver(self.sender, message)

    def recv(self, timeout: float) -> Message | None:
        """The next message the node sent to this link, or None after ``timeout``."""
        try:
            return self.node.outboxes[self.sender].get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Nothing to close."""

    def gone_for(self) -> float:
        """Never closed by the node."""
        return 0.0


if TYPE_CHECKING:
    # mypy checks here that the fakes keep the shapes they stand in for.
    def _node_like(node: FakeNode) -> NodeLike:
        return node

    def _link(link: FakeLink) -> Link:
        return link
