"""The threads that run remote calls: leader/followers on the node's inbox (threads, no sockets).

One thread of the pool at a time, the *leader*, waits for input: on the inbox
(a file descriptor given with ``serve``, read through a ``drain`` function the
node gives) and on the pool's own wake-up pipe. Having read a batch, the leader
runs its jobs itself, in order, on the thread that received them: no hand-off
to another thread and no thread wake-up per call, which is what a call costs
when an I/O thread receives and a worker runs. The other idle threads
(*followers*) sleep until made leader.

While the leader runs a job, nobody reads the inbox. A watchdog thread takes
it back from a job that has run one whole slice (``watch_every`` seconds): an
idle follower (or a new thread) becomes the leader. While some job is that
slow, leaders hand the inbox on *before* running each job (as a plain thread
pool does), so slow jobs never hold up others by more than a slice or two;
once no job is slow, leaders run jobs inline again. This is Go's ``sysmon``
taking a processor back from a goroutine stuck in a system call, applied to
Python threads.

Each job's start is stamped (``time.monotonic``, no system call). The watchdog
looks when the oldest job running will have run a slice, else two slices
after its last look (a job starting meanwhile has then run one to two slices,
or is looked at again when it has run one), so it takes over a job after one
to two slices; it sleeps until the next job once a look finds that none
started since the look before. Jobs that come one by one and end within
their slice wake it about every two slices.

Jobs given with ``submit`` (from any thread) never wait behind a running job:
another thread takes them at once, as in a plain pool.

A new thread starts whenever work needs a thread and none is idle; at most
``max_workers`` jobs run at once, beyond that jobs queue (the leader goes on
reading the inbox meanwhile, so it is ``max_workers + 1`` threads at most).
Idle threads exit after ``idle_timeout``. Threads are daemons: a call that never
returns cannot hold up process exit.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("hotmesh.rpc")

Job = Callable[..., None]
Work = tuple[Job, tuple[Any, ...]]
Drain = Callable[[], list[Work]]

SLICE = 0.005  # seconds a job may hold the inbox (CPython's switch interval)

_now = time.monotonic
_sleep = time.sleep  # not a wrapper installed later (the console's interruptible sleep)


class _Thread:
    """One thread of the pool: its wake-up lock and when its job started."""

    __slots__ = ("running", "thread", "wake")

    def __init__(self) -> None:
        self.wake = threading.Lock()
        self.wake.acquire()
        self.running = 0.0  # time.monotonic() when its job started, 0.0 when none
        self.thread: threading.Thread | None = None


class WorkerPool:
    """Runs jobs on daemon threads, one of which reads the inbox at a time (see the module)."""

    def __init__(
        self,
        max_workers: int = 64,
        idle_timeout: float = 30.0,
        name: str = "",
        *,
        watch_every: float = SLICE,
    ) -> None:
        self.max_workers = max_workers
        self._idle_timeout = idle_timeout
        self._slice = watch_every
        self._name = name or "hotmesh-worker"
        self._lock = threading.Lock()
        self._jobs: collections.deque[Work] = collections.deque()
        self._threads: set[_Thread] = set()
        self._followers: list[_Thread] = []  # idle, newest last (its cache is warmest)
        self._leader: _Thread | None = None
        self._waiting = False  # the leader sleeps in poll (it must be poked for new work)
        self._running = 0  # jobs running now
        self._eager = False  # a slow job runs: leaders hand the inbox on before each job
        self._started = 0  # jobs started so far (the watchdog's sign of activity)
        self._closed = False
        self._names = itertools.count(1)
        # The inbox: its fd and the function reading what waits there.
        self._inbox_fd = -1
        self._drain: Drain | None = None
        self._drain_signalled: Drain | None = None
        self._poller = select.poll()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._poller.register(self._wake_r, select.POLLIN)
        self._woken = False
        self._woken_lock = threading.Lock()
        # The watchdog sleeps on this while nothing runs; ``_watching`` mirrors
        # it for the job path (Event.is_set is a Python call).
        self._armed = threading.Event()
        self._watching = False
        self._watchdog: threading.Thread | None = None
        self._seen_started = 0

    @property
    def size(self) -> int:
        """Threads alive now."""
        return len(self._threads)

    # ---- any thread ------------------------------------------------------
    def serve(self, fd: int, drain: Drain, *, signalled: Drain | None = None) -> None:
        """Read the inbox ``fd`` from now on: when it signals, the leader calls ``drain()``.

        ``drain`` runs on the leader thread; it returns the jobs the input asks
        for, and must hand anything else to whoever handles it (it must not
        block). It is called again until it returns nothing before the leader
        sleeps, so an fd that signals only edges (``ZMQ_FD``) loses nothing.
        ``signalled``, if given, is called instead of ``drain`` just after
        ``fd`` signalled (it may read less, the leader drains again anyway).
        """
        with self._lock:
            if self._closed:
                return
            self._drain = drain
            self._drain_signalled = signalled or drain
            self._inbox_fd = fd
            self._poller.register(fd, select.POLLIN)
            start = self._need_leader() if self._leader is None else None
        self._poke()
        self._start(start)

    def stop_serving(self) -> None:
        """Stop reading the inbox (before its socket closes); jobs queued still run."""
        with self._lock:
            self._drain = None
        self._poke()

    def asleep(self) -> bool:
        """Whether the leader sleeps waiting for input (else it looks at the inbox
        before it sleeps again)."""
        return self._waiting

    def poke(self) -> None:
        """Input may wait on the inbox although its fd did not signal: have it read.

        Call after using the inbox socket from a thread that is not the leader
        (an operation there may consume the fd's signal).
        """
        if self._waiting:
            self._poke()

    def submit(self, job: Job, *args: Any) -> None:
        """Queue ``job(*args)``; it starts at once unless ``max_workers`` jobs run."""
        start = None
        poke = False
        with self._lock:
            if self._closed:
                return
            self._jobs.append((job, args))
            leader = self._leader
            if leader is not None and not leader.running:
                poke = self._waiting  # it takes the job when it looks next
            elif leader is None or self._running < self.max_workers:
                # No leader, or one running a job (maybe a slow one): another
                # thread takes this job now.
                self._leader = None
                start = self._need_leader()
        if poke:
            self._poke()
        self._start(start)

    def close(self, timeout: float = 0.5) -> None:
        """Stop the threads: idle ones exit at once and are joined (up to ``timeout``);
        running jobs finish on their own threads. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._drain = None
            threads = list(self._threads)
            followers, self._followers = self._followers, []
        for follower in followers:
            follower.wake.release()
        self._poke(closing=True)
        self._armed.set()
        deadline = time.monotonic() + timeout
        me = threading.current_thread()
        for entry in [*threads, None]:
            thread = self._watchdog if entry is None else entry.thread
            if thread is not None and thread is not me:
                with contextlib.suppress(RuntimeError):  # not started yet
                    thread.join(max(0.0, deadline - time.monotonic()))
        if not any(t.thread and t.thread.is_alive() for t in threads):
            with contextlib.suppress(OSError):
                os.close(self._wake_r)
                os.close(self._wake_w)

    # ---- under self._lock ------------------------------------------------
    def _need_leader(self) -> _Thread | None:
        """Make an idle follower the leader, or return a new thread to start as one.

        Called with no leader (the caller just dropped it, or it was none).
        """
        if self._closed:
            return None
        if self._followers:
            follower = self._followers.pop()
            self._leader = follower
            follower.wake.release()
            return None
        new = _Thread()
        self._threads.add(new)
        self._leader = new
        return new

    # ---- threads ---------------------------------------------------------
    def _start(self, entry: _Thread | None) -> None:
        if entry is None:
            return
        thread = threading.Thread(
            target=self._work, args=(entry,), name=f"{self._name}-{next(self._names)}", daemon=True
        )
        entry.thread = thread
        thread.start()

    def _poke(self, closing: bool = False) -> None:
        with self._woken_lock:
            if self._woken or (self._closed and not closing):
                return
            self._woken = True
        with contextlib.suppress(OSError):  # full: the leader wakes anyway
            os.write(self._wake_w, b"\0")

    def _work(self, me: _Thread) -> None:
        try:
            while self._turn(me):
                pass
        except BaseException:  # an asynchronous exception landing outside a job
            log.exception("a worker thread of %s failed", self._name)
            with self._lock:
                if me.running:
                    me.running = 0.0
                    self._running -= 1
                self._threads.discard(me)
                if me in self._followers:
                    self._followers.remove(me)
                start = self._need_leader() if self._leader is me else None
            self._start(start)

    def _turn(self, me: _Thread) -> bool:
        """One step of a thread's life, after the job it ran if any; False when it ends."""
        with self._lock:
            if me.running:  # its job ended (counted here: one lock round trip per job)
                me.running = 0.0
                self._running -= 1
            if self._closed:
                if self._leader is me:
                    self._leader = None
                self._threads.discard(me)
                return False
            work = None
            start = None
            if self._leader is not me:
                if self._leader is None:
                    self._leader = me
                    return True
                if not (self._jobs and self._running < self.max_workers):
                    self._followers.append(me)
                    return self._follow(me)
                # Work queued while jobs ran (at the cap): take it on this thread.
                work = self._take(me)
            elif self._jobs and self._running < self.max_workers:
                work = self._take(me)
                if self._eager and self._drain is not None:
                    # A slow job runs: another thread reads the inbox while
                    # this one runs the job, as in a plain pool.
                    self._leader = None
                    start = self._need_leader()
            else:
                self._waiting = True
        if work is None:
            return self._wait_for_input(me)
        if start is not None:
            self._start(start)
        if not self._watching:
            self._arm()
        try:  # counted as running on this thread: the next turn counts its end
            work[0](*work[1])
        except BaseException:
            log.exception("a worker job failed")
        return True

    def _take(self, me: _Thread) -> Work:
        """The next queued job, counted as running on ``me`` (under the lock)."""
        self._running += 1
        self._started += 1
        me.running = _now()
        return self._jobs.popleft()

    def _follow(self, me: _Thread) -> bool:
        """Sleep (the lock is released first) until made leader, or idle too long."""
        self._lock.release()
        try:
            if me.wake.acquire(timeout=self._idle_timeout):
                return True
        finally:
            self._lock.acquire()
        if me in self._followers:  # nobody counted on this thread: it ends
            self._followers.remove(me)
            self._threads.discard(me)
            return False
        # Made leader (or the pool closed) just as it timed out.
        self._lock.release()
        try:
            me.wake.acquire()
        finally:
            self._lock.acquire()
        return True

    def _wait_for_input(self, me: _Thread) -> bool:
        """The leader: read the inbox; when it is empty, sleep until input or a poke.

        The first job read runs at once on this thread when nothing else waits
        (what ``_turn`` would decide next, without another turn).
        """
        # ``_waiting`` is set already: a poke from now on reaches the poll below,
        # and input that came before it is found by this drain.
        drain = self._drain
        if drain is None and self._inbox_fd >= 0:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._poller.unregister(self._inbox_fd)
            self._inbox_fd = -1
        jobs = drain() if drain is not None else []
        if not jobs:
            timeout = -1 if drain is not None else int(self._idle_timeout * 1000)
            try:
                events = self._poller.poll(timeout)
            except OSError:
                events = []
            signalled = False
            for fd, _ in events:
                if fd == self._wake_r:
                    self._consume_pokes()
                else:
                    signalled = True
            drain = self._drain_signalled if signalled else self._drain
            if drain is not None and self._drain is not None:
                jobs = drain()
            elif not events:
                with self._lock:
                    self._waiting = False
                    if self._jobs or self._leader is not me:
                        return True
                    # Idle, nothing to read: the next submit starts a thread.
                    self._leader = None
                    self._threads.discard(me)
                    return False
        work = None
        with self._lock:
            self._waiting = False
            if (
                jobs
                and not self._jobs
                and not self._eager
                and self._leader is me
                and self._running < self.max_workers
                and not self._closed
            ):
                self._jobs.extend(jobs[1:])
                self._running += 1
                self._started += 1
                me.running = _now()
                work = jobs[0]
            else:
                self._jobs.extend(jobs)
        if work is not None:
            if not self._watching:
                self._arm()
            try:  # as in _turn (written out: one Python call less per job)
                work[0](*work[1])
            except BaseException:
                log.exception("a worker job failed")
        return True

    def _consume_pokes(self) -> None:
        # Drain first, then clear the flag (see PollLoop._consume_wakeups).
        try:
            while os.read(self._wake_r, 4096):
                pass
        except OSError:
            pass
        with self._woken_lock:
            self._woken = False

    # ---- the watchdog ----------------------------------------------------
    def _arm(self) -> None:
        with self._lock:
            if self._watchdog is None and not self._closed:
                self._watchdog = threading.Thread(
                    target=self._watch, name=f"{self._name}-watchdog", daemon=True
                )
                self._watchdog.start()
            self._watching = True
        self._armed.set()

    def _watch(self) -> None:
        wait = self._slice
        while True:
            self._armed.wait()
            if self._closed:
                return
            _sleep(wait)
            with self._lock:
                if self._closed:
                    return
                start, wait = self._look(_now())
            self._start(start)

    def _look(self, now: float) -> tuple[_Thread | None, float]:
        """The watchdog's look (under the lock): the thread to start as the new
        leader if the leader's job has run a whole slice, and the time to the next look."""
        due = now - self._slice
        slow = False
        oldest = now  # the start of the oldest job running that is not slow yet
        for entry in self._threads:
            started = entry.running
            if started:
                if started <= due:
                    slow = True
                elif started < oldest:
                    oldest = started
        self._eager = slow
        start = None
        leader = self._leader
        if leader is not None and 0.0 < leader.running <= due and self._drain is not None:
            # The leader has run one job for a whole slice: another thread
            # takes the inbox over.
            self._leader = None
            start = self._need_leader()
        if not self._running and self._started == self._seen_started:
            self._armed.clear()
            self._watching = False
            return start, self._slice  # the job that arms it again starts then
        self._seen_started = self._started
        if oldest < now:
            return start, oldest + self._slice - now  # when that job has run a slice
        if slow:
            return start, self._slice  # to see them end (and leaders run jobs inline again)
        # Nothing runs: a job starting meanwhile has run one to two slices at the
        # next look, or is looked at again when it has run one.
        return start, 2 * self._slice
