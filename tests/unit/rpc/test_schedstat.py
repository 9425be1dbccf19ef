"""A thread's scheduler accounting: the pure judgement of a job's own time, and reading /proc."""

from __future__ import annotations

import sys
import threading

import pytest

from hotmesh._rpc import schedstat
from hotmesh._rpc.schedstat import ThreadTimes, default_reader, own_time
from tests.waiting import wait_until

MS = 1_000_000


def test_time_on_a_run_queue_is_not_the_jobs_own() -> None:
    assert (
        own_time(12 * MS, on_cpu=MS // 10, runnable=12 * MS - MS // 10, watchdog_asleep=5 * MS)
        == MS // 10
    )


def test_sleep_while_the_watchdog_slept_is_the_jobs_own() -> None:
    assert own_time(6 * MS, on_cpu=0, runnable=0, watchdog_asleep=5 * MS) == 5 * MS


def test_sleep_while_the_watchdog_waited_for_a_core_or_the_gil_is_not_the_jobs_own() -> None:
    # Asleep 9 ms of 20; the watchdog slept 5 of them and then waited 15: at
    # least 9 + 5 - 20 < 0 ms of the job's sleep overlapped the watchdog's.
    assert own_time(20 * MS, on_cpu=MS, runnable=10 * MS, watchdog_asleep=5 * MS) == MS


def test_time_on_a_core_counts_however_late_the_watchdog() -> None:
    # A job computing in C with the GIL held: the watchdog could not look meanwhile.
    assert own_time(900 * MS, on_cpu=900 * MS, runnable=0, watchdog_asleep=5 * MS) == 900 * MS


def test_counters_that_went_past_the_interval_give_no_negative_time() -> None:
    assert own_time(5 * MS, on_cpu=0, runnable=6 * MS, watchdog_asleep=5 * MS) == 0


@pytest.mark.skipif(sys.platform != "linux", reason="schedstat is Linux's")
def test_a_threads_times_are_read_while_it_lives() -> None:
    times = ThreadTimes().times(threading.get_native_id())
    assert times is not None and times[0] > 0 and times[1] >= 0
    assert ThreadTimes().wants_core(threading.get_native_id())  # it runs this
    assert isinstance(default_reader(), ThreadTimes)


@pytest.mark.skipif(sys.platform != "linux", reason="schedstat is Linux's")
def test_a_blocked_thread_does_not_want_a_core() -> None:
    ready, release = threading.Event(), threading.Event()
    ids: list[int] = []

    def blocked() -> None:
        ids.append(threading.get_native_id())
        ready.set()
        release.wait(10)

    thread = threading.Thread(target=blocked)
    thread.start()
    assert ready.wait(5)
    # It may still be on its way into the wait: until it is asleep there.
    wait_until(lambda: not ThreadTimes().wants_core(ids[0]), timeout=5)
    release.set()
    thread.join()


def test_a_thread_that_is_not_ours_has_no_times() -> None:
    assert ThreadTimes().times(2**22 + 12345) is None  # above pid_max's ceiling
    assert not ThreadTimes().wants_core(2**22 + 12345)


def test_without_schedstat_there_is_no_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schedstat.ThreadTimes, "times", lambda self, native_id: None)
    assert default_reader() is None
