"""One-line deploy notices for the engineers attached to a node: an airbag
window opened, was confirmed or reverted; a node joined behind the fleet's
release. A listener registry (attached consoles listen); no I/O."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("hotmesh.deploy")

Listener = Callable[[str, str], None]
"""Told ``(node name, one-line notice)``: the node the notice is about is the one it is for."""

_listeners: list[Listener] = []
_lock = threading.Lock()


def add_notice_listener(listener: Listener) -> Callable[[], None]:
    """Call ``listener(node, text)`` for every deploy notice of the nodes of this process.

    The console server uses it to show each notice in every console attached
    to the node. Returns the callable that removes the listener.
    """
    with _lock:
        _listeners.append(listener)

    def remove() -> None:
        with _lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return remove


def announce(node: str, text: str) -> None:
    """Hand ``text`` to every listener (a failing listener is only logged)."""
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(node, text)
        except Exception:
            log.exception("a deploy notice listener failed")
