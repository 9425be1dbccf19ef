"""An in-process stand-in for a node's message handlers and a client connection,
for unit tests of the console server and client without sockets."""

from __future__ import annotations

import itertools
import queue
import threading
from pathlib import Path
from typing import Any

Message = dict[str, Any]


class FakeNode:
    """Dispatches client messages to registered handlers on its own "I/O" thread."""

    def __init__(self, name: str, state_dir: Path) -> None:
        self.name = name
        self.state_dir = state_dir
        self.handlers: dict[str, Any] = {}
        self.outboxes: dict[bytes, queue.SimpleQueue[Message]] = {}
        self.stopped = False
        self._inbox: queue.SimpleQueue[tuple[bytes, Message] | None] = queue.SimpleQueue()
        self._ids = itertools.count(1)
        self._thread = threading.Thread(target=self._io, name="fake-io", daemon=True)
        self._thread.start()

    def register_handler(self, kind: str, handler: Any) -> None:
        self.handlers[kind] = handler

    def send_to(self, sender: bytes, message: Message) -> None:
        self.outboxes[sender].put(dict(message))

    def nodes(self) -> list[str]:
        return []

    def call(self, target: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return ("called", target, fn, args)

    def stop(self) -> None:
        self.stopped = True

    def connect(self) -> FakeLink:
        sender = f"client-{next(self._ids)}".encode()
        self.outboxes[sender] = queue.SimpleQueue()
        return FakeLink(self, sender)

    def deliver(self, sender: bytes, message: Message) -> None:
        self._inbox.put((sender, dict(message)))

    def close(self) -> None:
        self._inbox.put(None)
        self._thread.join(timeout=2)

    def _io(self) -> None:
        while (item := self._inbox.get()) is not None:
            sender, message = item
            self.handlers[message["t"]](sender, message)


class FakeLink:
    """The client end: ``send``/``recv``/``close`` like hotmesh._mesh.client.Connection."""

    def __init__(self, node: FakeNode, sender: bytes) -> None:
        self.node = node
        self.sender = sender
        self.sent: list[Message] = []
        self.mute = False

    def send(self, message: Message) -> None:
        self.sent.append(message)
        if not self.mute:
            self.node.deliver(self.sender, message)

    def recv(self, timeout: float) -> Message | None:
        try:
            return self.node.outboxes[self.sender].get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        pass
