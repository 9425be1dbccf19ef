"""The worker pool grows on demand up to its cap (threads, no sockets)."""

from __future__ import annotations

import threading

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
        wait_until(lambda: pool._idle == pool.size, timeout=5)
    assert pool.size == 1
    pool.close()


def test_failing_job_does_not_kill_the_pool() -> None:
    pool = WorkerPool(max_workers=1)
    done = threading.Event()
    pool.submit(lambda: 1 / 0)
    pool.submit(done.set)
    assert done.wait(5)
    pool.close()
