"""The I/O thread's poll loop and the refusal log throttle (a pipe, no network)."""

from __future__ import annotations

import logging
import threading

import pytest

from hotmesh._errors import TransportError
from hotmesh._mesh.iothread import IOThread, PollLoop
from hotmesh._mesh.zap import RefusalLog


def test_call_soon_threadsafe_runs_callbacks_in_order_on_the_loop_thread() -> None:
    io = IOThread(name="hotmesh-io-test")
    io.start()
    seen: list[tuple[int, bool]] = []
    done = threading.Event()
    for i in range(100):
        io.submit(lambda i=i: seen.append((i, io.in_thread())))
    io.submit(done.set)
    assert done.wait(5)
    io.stop()
    assert seen == [(i, True) for i in range(100)]


def test_run_sync_returns_the_value_and_raises_the_error() -> None:
    io = IOThread(name="hotmesh-io-test")
    io.start()
    try:
        assert io.run_sync(lambda: 42) == 42
        with pytest.raises(ZeroDivisionError):
            io.run_sync(lambda: 1 / 0)
    finally:
        io.stop()
    io.stop()  # twice is fine


def test_run_sync_on_a_stuck_loop_raises_a_transport_error() -> None:
    io = IOThread(name="hotmesh-io-test")
    io.start()
    release = threading.Event()
    try:
        io.submit(lambda: release.wait(5))  # the loop is busy in a job that does not return
        with pytest.raises(TransportError, match=r"did not answer within 0\.1 s"):
            io.run_sync(lambda: 42, timeout=0.1)
    finally:
        release.set()
        io.stop()


def test_timers_fire_in_order_and_cancelled_ones_do_not() -> None:
    io = IOThread(name="hotmesh-io-test")
    io.start()
    fired: list[str] = []
    done = threading.Event()

    def schedule() -> None:
        io.loop.call_later(0.02, fired.append, "second")
        io.loop.call_later(0.01, fired.append, "first")
        io.loop.call_later(0.015, fired.append, "cancelled").cancel()
        io.loop.call_later(0.03, done.set)

    io.submit(schedule)
    assert done.wait(5)
    io.stop()
    assert fired == ["first", "second"]


def test_failing_callback_is_logged_and_the_loop_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    io = IOThread(name="hotmesh-io-test")
    io.start()
    done = threading.Event()
    io.submit(lambda: 1 / 0)
    io.submit(done.set)
    assert done.wait(5)
    io.stop()
    assert "callback on the node's I/O loop failed" in caplog.text


def test_closed_loop_refuses_new_work() -> None:
    loop = PollLoop()
    loop.close()
    with pytest.raises(RuntimeError):
        loop.call_soon_threadsafe(print)


def test_refusal_log_writes_one_line_per_host_per_quiet_period(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="hotmesh.mesh")
    refusals = RefusalLog()
    assert refusals.refused("10.0.0.1:5000", "refused %s", "a", now=0.0)
    assert not refusals.refused("10.0.0.1:5001", "refused %s", "b", now=1.0)
    assert refusals.refused("10.0.0.2:6000", "refused %s", "c", now=1.0)
    assert refusals.refused("10.0.0.1:5002", "refused %s", "d", now=11.0)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["refused a", "refused c", "refused d (1 more refusals since the last line)"]
