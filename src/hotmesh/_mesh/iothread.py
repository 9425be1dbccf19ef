"""The node's I/O thread and its event loop, built on ``zmq_poll`` (thread and pipe I/O).

Everything that reads a zmq socket runs on this loop; other threads hand work
to it with ``submit`` (``loop.call_soon_threadsafe``). The loop is a small
``zmq_poll`` loop rather than asyncio: it sees zmq sockets level-triggered (no
edge-triggered ``ZMQ_FD`` pitfalls) and adds little to each frame. Plain file
descriptors (a node has one per peer: its link's socket monitor) wait in one
epoll set where there is epoll, so that a wake-up costs the same however many
peers there are.
"""

from __future__ import annotations

import collections
import contextlib
import heapq
import itertools
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

import zmq

from hotmesh._errors import TransportError

log = logging.getLogger("hotmesh.mesh")

Callback = Callable[..., Any]

T = TypeVar("T")


class TimerHandle:
    """A callback scheduled with ``call_later``; ``cancel()`` stops it."""

    __slots__ = ("args", "callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callback, args: tuple[Any, ...]) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        """Do not run the callback (no effect once it ran)."""
        self.cancelled = True


class PollLoop:
    """A small event loop: zmq sockets and fds, callbacks, timers.

    ``call_soon_threadsafe`` is the only method other threads may use; the
    rest belongs to the loop's thread. Callbacks must not block.
    """

    def __init__(self) -> None:
        self._poller = zmq.Poller()
        self._readers: dict[Any, Callback] = {}
        # Plain fds wait in an epoll set, itself one fd of the poller: zmq_poll
        # polls every item at every call, about 2 us each on a cold cache.
        self._epoll = select.epoll() if hasattr(select, "epoll") else None
        self._fd_readers: dict[int, Callback] = {}
        if self._epoll is not None:
            self._poller.register(self._epoll.fileno(), zmq.POLLIN)
        self._ready: collections.deque[tuple[Callback, tuple[Any, ...]]] = collections.deque()
        self._incoming: collections.deque[tuple[Callback, tuple[Any, ...]]] = collections.deque()
        self._timers: list[tuple[float, int, TimerHandle]] = []
        self._serial = itertools.count()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._poller.register(self._wake_r, zmq.POLLIN)
        self._woken = False
        self._lock = threading.Lock()
        self._stopping = False
        self.closed = False

    # ---- loop thread ---------------------------------------------------
    def add_reader(self, source: zmq.Socket[bytes] | int, callback: Callback) -> None:
        """Call ``callback()`` whenever ``source`` (a zmq socket or an fd) is readable."""
        if isinstance(source, int) and self._epoll is not None:
            try:
                self._epoll.register(source, select.EPOLLIN)
            except FileExistsError:
                self._epoll.modify(source, select.EPOLLIN)
            self._fd_readers[source] = callback
            return
        self._readers[source] = callback
        self._poller.register(source, zmq.POLLIN)

    def remove_reader(self, source: zmq.Socket[bytes] | int) -> None:
        """Stop watching ``source`` (no error if it was not watched)."""
        if isinstance(source, int) and self._fd_readers.pop(source, None) is not None:
            assert self._epoll is not None
            # Closed already: the kernel dropped it from the set.
            with contextlib.suppress(OSError):
                self._epoll.unregister(source)
            return
        if self._readers.pop(source, None) is not None:
            self._poller.unregister(source)

    def call_soon(self, callback: Callback, *args: Any) -> None:
        """Run ``callback(*args)`` on the next turn of the loop."""
        self._ready.append((callback, args))

    def call_later(self, delay: float, callback: Callback, *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` after ``delay`` seconds."""
        handle = TimerHandle(time.monotonic() + delay, callback, args)
        heapq.heappush(self._timers, (handle.when, next(self._serial), handle))
        return handle

    def stop(self) -> None:
        """Leave ``run_forever`` after the current turn."""
        self._stopping = True

    def run_forever(self) -> None:
        """Run until ``stop()``."""
        while not self._stopping:
            self._run_once()

    def close(self) -> None:
        """Release the wake-up pipe (after the loop stopped)."""
        if not self.closed:
            self.closed = True
            os.close(self._wake_r)
            os.close(self._wake_w)
            if self._epoll is not None:
                self._epoll.close()

    # ---- any thread ----------------------------------------------------
    def call_soon_threadsafe(self, callback: Callback, *args: Any) -> None:
        """Run ``callback(*args)`` on the loop soon (any thread).

        Raises:
            RuntimeError: the loop is closed.
        """
        if self.closed:
            raise RuntimeError("the event loop is closed")
        self._incoming.append((callback, args))
        with self._lock:
            if self._woken:
                return
            self._woken = True
        # A full pipe means the loop is awake anyway.
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"\0")

    # ---- internals -----------------------------------------------------
    def _run_once(self) -> None:
        timeout = self._timeout()
        epoll = self._epoll
        for source, _ in self._poller.poll(timeout):
            if source == self._wake_r:
                self._consume_wakeups()
                continue
            if epoll is not None and source == epoll.fileno():
                for fd, _ in epoll.poll(0):
                    # A callback may have removed another reader meanwhile.
                    callback = self._fd_readers.get(fd)
                    if callback is not None:
                        self._run(callback, ())
                continue
            callback = self._readers.get(source)
            if callback is not None:
                self._run(callback, ())
        self._run_timers()
        while self._incoming:
            self._ready.append(self._incoming.popleft())
        for _ in range(len(self._ready)):
            callback, args = self._ready.popleft()
            self._run(callback, args)

    def _timeout(self) -> int:
        if self._ready or self._incoming or self._stopping:
            return 0
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        if not self._timers:
            return -1
        return max(0, int((self._timers[0][0] - time.monotonic()) * 1000) + 1)

    def _run_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, handle = heapq.heappop(self._timers)
            if not handle.cancelled:
                self._run(handle.callback, handle.args)

    def _consume_wakeups(self) -> None:
        # Drain first, then clear the flag: cleared first, a thread could set it
        # and write its byte in between, the drain would eat that byte, and every
        # later submit would see the flag set and never wake the loop again.
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            self._woken = False

    def _run(self, callback: Callback, args: tuple[Any, ...]) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("a callback on the node's I/O loop failed: %r", callback)


class IOThread:
    """A ``PollLoop`` running on a dedicated daemon thread ("hotmesh-io")."""

    def __init__(self, name: str = "hotmesh-io") -> None:
        self.loop = PollLoop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._stopped = threading.Event()

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def in_thread(self) -> bool:
        """Whether the caller runs on the I/O thread."""
        return threading.current_thread() is self._thread

    def submit(self, fn: Callback, *args: Any) -> None:
        """Run ``fn(*args)`` on the loop soon (thread-safe; dropped once stopped)."""
        if self._stopped.is_set():
            return
        # The loop may close between the check and the call.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(fn, *args)

    def run_sync(self, fn: Callable[[], T], timeout: float = 5.0) -> T:
        """Run ``fn()`` on the loop and return its result (raises its exception).

        Raises:
            TransportError: the loop did not run it within ``timeout`` seconds
                (the I/O thread is stuck or gone).
        """
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
            raise TransportError(f"the node's I/O thread did not answer within {timeout:g} s")
        if box[1] is not None:
            raise box[1]
        return cast(T, box[0])

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the loop and join the thread (safe to call twice)."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            if not self.in_thread():
                self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()

    def _run(self) -> None:
        try:
            self.loop.run_forever()
        except Exception:
            log.exception("the node's I/O loop crashed")
