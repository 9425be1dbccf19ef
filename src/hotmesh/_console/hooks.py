"""What a node's console puts into its process as the node starts: the
``sys.stdout``/``stderr``/``stdin`` proxies, the interruptible ``time.sleep``
and the namespace of code shipped to the node. Counted, so the last console
server of the process to stop takes them out (no I/O)."""

from __future__ import annotations

import threading
from typing import Any

from hotmesh._console import routing
from hotmesh._console.interrupt import sleep_gate
from hotmesh._rpc import namespaces

_lock = threading.Lock()
_count = 0


def install() -> None:
    """Put the hooks in (at a node's start: code that takes ``sys.stdout`` or
    ``time.sleep`` after it gets the proxies and the interruptible sleep)."""
    global _count
    routing.install()
    sleep_gate.install()
    with _lock:
        _count += 1
        if _count == 1:
            namespaces.set_namespace_factory(_shipped_namespace)


def uninstall() -> None:
    """Undo one ``install``; the last one takes the hooks out."""
    global _count
    with _lock:
        _count -= 1
        if _count == 0:
            namespaces.set_namespace_factory(None)
    sleep_gate.uninstall()
    routing.uninstall()


def _shipped_namespace() -> dict[str, Any]:
    """The globals of code shipped to this node: the console's namespace."""
    from hotmesh._console.helpers import make_namespace, running_node

    return make_namespace(running_node)
