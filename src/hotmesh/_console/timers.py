"""One background thread that runs small callbacks at deadlines (output flushes,
completion time caps, lease checks); no I/O of its own."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

_log = logging.getLogger("hotmesh.console")


class Timers:
    """Run callbacks after a delay on one shared daemon thread.

    Callbacks must be short: they run one after the other on the timer thread.
    An exception in a callback is logged, never propagated, so that one bad
    callback cannot stop the others. The thread starts with the first callback:
    every node makes one for its console server, few ever serve a console.
    """

    def __init__(self, name: str = "hotmesh-console-timers") -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the timer thread in about ``delay`` seconds."""
        deadline = time.monotonic() + delay
        with self._cond:
            if self._stopped:
                return
            heapq.heappush(self._heap, (deadline, next(self._order), callback))
            if self._thread.ident is None:
                self._thread.start()
            elif self._heap[0][2] is callback:
                self._cond.notify()

    def stop(self) -> None:
        """Drop pending callbacks and end the thread (waits at most a second)."""
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify()
        if self._thread.ident is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    if not self._heap:
                        self._cond.wait()
                        continue
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                if self._stopped:
                    return
                _, _, callback = heapq.heappop(self._heap)
            try:
                callback()
            except Exception:
                _log.exception("console timer callback failed")
