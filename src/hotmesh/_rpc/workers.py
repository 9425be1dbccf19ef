"""A bounded thread pool that grows on demand, for running remote calls (threads, no sockets).

A new thread starts whenever a job arrives and no thread is idle, up to
``max_workers``; beyond that, jobs queue. Idle threads exit after
``idle_timeout``. Threads are daemons: a call that never returns cannot hold
up process exit.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("hotmesh.rpc")

Job = Callable[..., None]


class WorkerPool:
    """Runs jobs on daemon threads; a slow job never delays another while below the cap."""

    def __init__(self, max_workers: int = 64, idle_timeout: float = 30.0, name: str = "") -> None:
        self.max_workers = max_workers
        self._idle_timeout = idle_timeout
        self._name = name or "hotmesh-worker"
        # A job travels with its arguments: no closure built per call.
        self._jobs: queue.SimpleQueue[tuple[Job, tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self._closed = False
        self._serial = 0
        self._alive: set[threading.Thread] = set()

    @property
    def size(self) -> int:
        """Threads alive now."""
        return self._threads

    def submit(self, job: Job, *args: Any) -> None:
        """Queue ``job(*args)``; start a thread if none is idle and the cap allows."""
        thread = None
        with self._lock:
            if self._closed:
                return
            if self._idle == 0 and self._threads < self.max_workers:
                self._threads += 1
                self._serial += 1
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{self._serial}", daemon=True
                )
                self._alive.add(thread)
            elif self._idle:
                self._idle -= 1
            # Queue under the lock so an idle thread timing out sees the job.
            self._jobs.put((job, args))
        if thread is not None:
            thread.start()

    def close(self, timeout: float = 0.5) -> None:
        """Stop the threads: idle ones exit at once and are joined (up to ``timeout``);
        running jobs finish on their own threads. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._alive)
        for _ in threads:
            self._jobs.put(None)
        deadline = time.monotonic() + timeout
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            try:
                item = self._jobs.get(timeout=self._idle_timeout)
            except queue.Empty:
                with self._lock:
                    # Recheck under the lock: a submit may have counted on us.
                    if self._jobs.empty():
                        self._threads -= 1
                        self._idle -= 1 if self._idle else 0
                        self._alive.discard(me)
                        return
                continue
            if item is None:
                with self._lock:
                    self._threads -= 1
                    self._alive.discard(me)
                return
            try:
                item[0](*item[1])
            except BaseException:
                log.exception("a worker job failed")
            with self._lock:
                self._idle += 1
