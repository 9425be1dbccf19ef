"""Delivery of nodeup/nodedown events to ``monitor_nodes`` callbacks (one thread).

Events are queued by the I/O thread and delivered in order on a dedicated
"hotmesh-events" thread, so a slow callback never stalls the mesh.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger("hotmesh.node")

MonitorCallback = Callable[[str, str], None]


class NodeEvents:
    """Callbacks for ``("nodeup" | "nodedown", name)`` events, run on their own thread."""

    def __init__(self) -> None:
        self._callbacks: list[MonitorCallback] = []
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[tuple[str, str] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="hotmesh-events", daemon=True)

    def start(self) -> None:
        """Start the delivery thread."""
        self._thread.start()

    def subscribe(self, callback: MonitorCallback) -> Callable[[], None]:
        """Add ``callback``; return a function that removes it."""
        with self._lock:
            self._callbacks.append(callback)

        def cancel() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return cancel

    def emit(self, event: str, name: str) -> None:
        """Queue one event (any thread; never blocks)."""
        self._queue.put((event, name))

    def stop(self, timeout: float = 1.0) -> None:
        """Deliver what is queued, then end the thread (unless called from a callback)."""
        self._queue.put(None)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            with self._lock:
                callbacks = list(self._callbacks)
            for callback in callbacks:
                try:
                    callback(*event)
                except Exception:
                    log.exception("a monitor_nodes callback failed on %s", event)
