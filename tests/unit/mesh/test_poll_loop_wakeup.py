"""The I/O loop's wake-up never gets lost: a submit racing the loop's drain of its
wake pipe still wakes the loop for the next submit."""

from __future__ import annotations

import select
import threading
from typing import Any

from hotmesh._mesh.iothread import IOThread, PollLoop


class _RacingLock:
    """A lock that lets another submit in right after the loop releases it once."""

    def __init__(self, loop: PollLoop) -> None:
        self._lock = threading.Lock()
        self._loop = loop
        self.armed = False

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc: Any) -> None:
        self._lock.release()
        if self.armed:
            self.armed = False
            self._loop.call_soon_threadsafe(lambda: None)


def _pipe_readable(loop: PollLoop) -> bool:
    readable, _, _ = select.select([loop._wake_r], [], [], 0)
    return bool(readable)


def test_submit_during_the_drain_leaves_the_loop_wakeable() -> None:
    loop = PollLoop()
    try:
        lock = _RacingLock(loop)
        loop._lock = lock  # type: ignore[assignment]
        loop.call_soon_threadsafe(lambda: None)
        lock.armed = True
        loop._consume_wakeups()
        # The invariant: when the flag says "woken", a byte is waiting in the pipe.
        assert not loop._woken or _pipe_readable(loop)
    finally:
        loop.close()


def test_many_submits_from_threads_all_run_promptly() -> None:
    io = IOThread(name="test-io")
    io.start()
    try:
        count = 2000
        done = threading.Semaphore(0)

        def submitter() -> None:
            for _ in range(count):
                io.submit(done.release)

        threads = [threading.Thread(target=submitter) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Each acquire waits for a callback run by the loop; a lost wake-up
        # would leave the loop asleep in poll() with callbacks queued.
        assert all(done.acquire(timeout=5) for _ in range(4 * count))
    finally:
        io.stop()
