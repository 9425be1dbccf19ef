"""The node's I/O thread: one asyncio loop on its own thread (does thread I/O only).

Everything that touches a zmq socket runs on this loop; other threads hand work
to it with ``submit`` (``loop.call_soon_threadsafe`` underneath).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("hotmesh.mesh")


class IOThread:
    """An asyncio event loop running on a dedicated daemon thread."""

    def __init__(self, name: str = "hotmesh-io") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._stopped = threading.Event()

    def start(self) -> None:
        """Start the thread; returns once the loop is running."""
        running = threading.Event()
        self.loop.call_soon(running.set)
        self._thread.start()
        running.wait()

    def in_thread(self) -> bool:
        """Whether the caller runs on the I/O thread."""
        return threading.current_thread() is self._thread

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop soon (thread-safe; dropped once stopped)."""
        if self._stopped.is_set():
            return
        # The loop may close between the check and the call.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(fn, *args)

    def run_sync(self, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Run ``fn()`` on the loop and return its result (raises its exception)."""
        if self.in_thread():
            return fn()
        done = threading.Event()
        box: list[Any] = [None, None]

        def job() -> None:
            try:
                box[0] = fn()
            except BaseException as exc:
                box[1] = exc
            finally:
                done.set()

        self.submit(job)
        if not done.wait(timeout):
            raise TimeoutError("the node's I/O thread did not answer")
        if box[1] is not None:
            raise box[1]
        return box[0]

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the loop and join the thread (safe to call twice)."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
        if not self.loop.is_running():
            self.loop.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        except Exception:
            log.exception("the node's I/O loop crashed")
