"""A node's console until its first console message: the hooks go in as the node
starts, and the console server (sessions, leases, timers, the audit log) is
made when a client first talks to the node (no I/O of its own).

Every node serves consoles; few ever have one attached. Each of 64 nodes
started at once would otherwise import and build the whole server.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hotmesh._console import hooks, protocol
from hotmesh._runtime import Handler, NodeLike

if TYPE_CHECKING:
    from hotmesh._console.server import ConsoleServer


class ConsoleFront:
    """Stands for a node's console server until the first console message.

    ``start`` installs the hooks and registers a handler for every kind the
    server handles (``protocol.node_kinds()``); the first message makes the
    server and hands every message on to it. A message after ``stop`` gets
    the stopped server's answer.
    """

    def __init__(self, node: NodeLike) -> None:
        self._node = node
        self._lock = threading.Lock()
        self._server: ConsoleServer | None = None
        self._handlers: dict[str, Handler] = {}
        self._stopped = False

    @property
    def server(self) -> ConsoleServer | None:
        """The console server, once a console message made it."""
        return self._server

    def start(self) -> None:
        hooks.install()
        for kind in protocol.node_kinds():
            self._node.register_handler(kind, functools.partial(self._handle, kind))

    def stop(self) -> None:
        """Stop the server, if made, and take the hooks out (idempotent)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            server = self._server
        if server is not None:
            server.close()
        hooks.uninstall()

    def _handle(self, kind: str, sender: bytes, message: dict[str, Any]) -> None:
        self._served()[kind](sender, message)

    def _served(self) -> dict[str, Handler]:
        """The server's handlers, made with the server at the first message."""
        with self._lock:
            if self._server is None:
                from hotmesh._console.server import ConsoleServer

                server = ConsoleServer(self._node)
                if self._stopped:
                    server.close()  # it answers that the console stopped
                else:
                    server.open()
                self._server, self._handlers = server, server.handlers()
            return self._handlers


def start_console(node: NodeLike) -> Callable[[], None]:
    """Start the console of ``node``; returns the callable that stops it.

    This is the node's extension entry (``hotmesh._node.extensions``).
    """
    front = ConsoleFront(node)
    front.start()
    return front.stop
