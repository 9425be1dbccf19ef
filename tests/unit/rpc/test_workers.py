"""The worker pool: grows on demand up to its cap; leader/followers on an inbox (threads, pipes)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from hotmesh._rpc import workers
from hotmesh._rpc.workers import WorkerPool
from tests.waiting import wait_until


def test_slow_job_does_not_delay_the_next_one() -> None:
    pool = WorkerPool(max_workers=4)
    release, second_ran = threading.Event(), threading.Event()
    pool.submit(lambda: release.wait(10))
    pool.submit(second_ran.set)
    assert second_ran.wait(5)
    release.set()
    pool.close()


def test_pool_never_exceeds_its_cap_and_queues_the_rest() -> None:
    pool = WorkerPool(max_workers=2)
    release = threading.Event()
    started: list[int] = []
    lock = threading.Lock()

    def job(i: int) -> None:
        with lock:
            started.append(i)
        release.wait(10)

    for i in range(5):
        pool.submit(lambda i=i: job(i))
    wait_until(lambda: len(started) == 2, timeout=5)
    assert pool.size == 2
    release.set()
    wait_until(lambda: len(started) == 5, timeout=5)
    pool.close()


def test_idle_threads_are_reused() -> None:
    pool = WorkerPool(max_workers=8)
    for _ in range(20):
        done = threading.Event()
        pool.submit(done.set)
        assert done.wait(5)
        wait_until(lambda: pool._running == 0, timeout=5)
    assert pool.size == 1
    pool.close()


def test_failing_job_does_not_kill_the_pool() -> None:
    pool = WorkerPool(max_workers=1)
    done = threading.Event()
    pool.submit(lambda: 1 / 0)
    pool.submit(done.set)
    assert done.wait(5)
    wait_until(lambda: pool._running == 0, timeout=5)  # both jobs counted as ended
    pool.close()


class FakeInbox:
    """An inbox for the pool to serve: a pipe whose fd signals, and a list of jobs."""

    def __init__(self) -> None:
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        self.waiting: list[Any] = []
        self.lock = threading.Lock()

    def put(self, job: Any) -> None:
        with self.lock:
            self.waiting.append(job)
        os.write(self.w, b"x")

    def drain(self) -> list[Any]:
        with contextlib.suppress(BlockingIOError):
            os.read(self.r, 4096)
        with self.lock:
            jobs, self.waiting = self.waiting, []
        return [(job, ()) for job in jobs]

    def close(self) -> None:
        os.close(self.r)
        os.close(self.w)


@pytest.fixture
def inbox() -> Iterator[FakeInbox]:
    box = FakeInbox()
    yield box
    box.close()


def test_a_job_read_from_the_inbox_runs_on_the_thread_that_read_it(inbox: FakeInbox) -> None:
    pool = WorkerPool(max_workers=4)
    readers: list[threading.Thread] = []
    pool.serve(inbox.r, lambda: (readers.append(threading.current_thread()), inbox.drain())[1])
    ran: list[threading.Thread] = []
    for _ in range(5):
        done = threading.Event()
        inbox.put(lambda done=done: (ran.append(threading.current_thread()), done.set()))
        assert done.wait(5)
        wait_until(lambda: pool._running == 0, timeout=5)
    assert set(ran) <= set(readers) and pool.size == 1
    pool.close()


def test_a_slow_job_hands_the_inbox_to_another_thread(inbox: FakeInbox) -> None:
    pool = WorkerPool(max_workers=4)
    pool.serve(inbox.r, inbox.drain)
    release, quick = threading.Event(), threading.Event()
    inbox.put(lambda: release.wait(10))
    wait_until(lambda: pool._running == 1, timeout=5)
    started = time.monotonic()
    inbox.put(quick.set)
    assert quick.wait(5)
    assert time.monotonic() - started < 1.0  # a few watchdog slices, not the slow job
    release.set()
    pool.close()


def test_many_slow_jobs_each_get_a_thread(inbox: FakeInbox) -> None:
    pool = WorkerPool(max_workers=16)
    pool.serve(inbox.r, inbox.drain)
    release = threading.Event()
    running = threading.Semaphore(0)

    def slow() -> None:
        running.release()
        release.wait(10)

    for _ in range(8):
        inbox.put(slow)
    for _ in range(8):
        assert running.acquire(timeout=5)
    assert pool.size == 9  # eight running, one reading the inbox
    release.set()
    pool.close()


def test_the_inbox_is_read_while_every_worker_is_busy(inbox: FakeInbox) -> None:
    pool = WorkerPool(max_workers=2)
    read = threading.Event()
    pool.serve(inbox.r, lambda: (read.set(), inbox.drain())[1])
    release = threading.Event()
    for _ in range(3):
        inbox.put(lambda: release.wait(10))
    wait_until(lambda: pool._running == 2 and not inbox.waiting, timeout=5)
    read.clear()
    os.write(inbox.w, b"x")  # more input: still read, though no job may start
    assert read.wait(5)
    assert pool._running == 2
    release.set()
    wait_until(lambda: pool._running == 0 and not pool._jobs, timeout=5)
    pool.close()


def test_a_poke_has_the_inbox_read_when_its_fd_did_not_signal(inbox: FakeInbox) -> None:
    pool = WorkerPool(max_workers=2)
    pool.serve(inbox.r, inbox.drain)
    wait_until(lambda: pool._waiting, timeout=5)
    done = threading.Event()
    with inbox.lock:
        inbox.waiting.append(done.set)  # no byte written: the fd stays quiet
    pool.poke()
    assert done.wait(5)
    pool.close()


def test_stop_serving_stops_reading_the_inbox(inbox: FakeInbox) -> None:
    pool = WorkerPool(max_workers=2)
    reads = [0]

    def drain() -> list[Any]:
        reads[0] += 1
        return inbox.drain()

    pool.serve(inbox.r, drain)
    done = threading.Event()
    inbox.put(done.set)
    assert done.wait(5)
    pool.stop_serving()
    wait_until(lambda: pool._inbox_fd == -1, timeout=5)
    count = reads[0]
    inbox.put(lambda: None)
    time.sleep(0.05)
    assert reads[0] == count
    local = threading.Event()
    pool.submit(local.set)  # jobs given directly still run
    assert local.wait(5)
    pool.close()


def test_a_slow_job_loses_the_inbox_when_input_comes_after_a_long_while(
    inbox: FakeInbox,
) -> None:
    pool = WorkerPool(max_workers=4, watch_every=0.001)
    pool.serve(inbox.r, inbox.drain)
    release, quick, started = threading.Event(), threading.Event(), threading.Event()
    inbox.put(lambda: (started.set(), release.wait(10)))
    assert started.wait(5)
    time.sleep(0.05)  # not a wait for a condition: the job runs many slices
    inbox.put(quick.set)
    assert quick.wait(5)
    release.set()
    pool.close()


def _leading(pool: WorkerPool, since: float) -> workers._Thread:
    """A thread made up for ``pool._look``: the leader, running a job since ``since``."""
    entry = workers._Thread()
    entry.running = since
    pool._threads.add(entry)
    pool._leader = entry
    pool._running += 1
    pool._started += 1
    pool._drain = lambda: []
    return entry


def test_the_watchdog_looks_again_when_the_oldest_job_has_run_a_slice() -> None:
    pool = WorkerPool(watch_every=0.005)
    leader = _leading(pool, since=100.0)
    with pool._lock:
        start, wait = pool._look(100.002)
    assert start is None and pool._leader is leader
    assert wait == pytest.approx(0.003)
    with pool._lock:
        start, wait = pool._look(100.005)
    assert start is not None and pool._leader is start  # another thread reads the inbox
    assert pool._eager and wait == pytest.approx(0.005)  # and it looks again a slice on
    pool.close()


def test_a_job_started_after_a_look_with_none_running_is_taken_over_two_slices_on() -> None:
    pool = WorkerPool(watch_every=0.005)
    pool._started = 1  # a job ran since the last look, none runs now
    with pool._lock:
        start, wait = pool._look(100.0)
    assert start is None and wait == pytest.approx(0.010)
    _leading(pool, since=100.0001)
    with pool._lock:
        start, _ = pool._look(100.0 + wait)
    assert start is not None  # it has run one to two slices: taken over
    pool.close()


def test_the_watchdog_sleeps_once_nothing_ran_since_its_last_look() -> None:
    pool = WorkerPool(watch_every=0.005)
    pool._watching = True
    pool._started = 1
    with pool._lock:
        pool._look(100.0)
    assert pool._watching  # a job ran since the look before
    with pool._lock:
        start, wait = pool._look(100.01)
    assert start is None and not pool._watching  # it sleeps until a job starts
    assert wait == pytest.approx(0.005)  # then it looks when that job has run a slice
    pool.close()
