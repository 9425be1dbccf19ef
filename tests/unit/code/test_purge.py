"""soft_purge, purge, check_old_code and check_process_code against real threads and tasks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

import hotmesh.code as code
from tests.waiting import wait_until

from .conftest import Pkg

LOOPER = """
import threading
STARTED = threading.Event()
def spin(stop):
    STARTED.set()
    while not stop.is_set():
        pass
"""


@pytest.fixture
def loop_thread() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in its own thread; stopped and closed afterwards."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-loop", daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def _upgrade(pkg: Pkg, module: str, source: str) -> None:
    pkg.write(module, source)
    code.load_file(pkg.mod(module))


def test_no_old_version_means_soft_purge_true_and_purge_reports_nothing(pkg: Pkg) -> None:
    pkg.write("a", "X = 1\n")
    pkg.imp("a")
    assert not code.check_old_code(pkg.mod("a"))
    assert code.soft_purge(pkg.mod("a"))
    report = code.purge(pkg.mod("a"))
    assert not report.purged and not report.killed


def test_thread_looping_in_old_code_blocks_soft_purge_and_purge_interrupts_it(pkg: Pkg) -> None:
    pkg.write("a", LOOPER)
    a = pkg.imp("a")
    stop = threading.Event()
    outcome: list[str] = []

    def run() -> None:
        try:
            a.spin(stop)
            outcome.append("returned")
        except BaseException as exc:
            outcome.append(type(exc).__name__)

    thread = threading.Thread(target=run, name="old-looper")
    thread.start()
    try:
        assert a.STARTED.wait(5)
        _upgrade(pkg, "a", LOOPER + "\nVERSION = 2\n")
        assert code.check_old_code(pkg.mod("a"))
        assert code.check_process_code(thread, pkg.mod("a"))
        assert code.soft_purge(pkg.mod("a")) is False
        assert code.check_old_code(pkg.mod("a"))
        report = code.purge(pkg.mod("a"), timeout=5)
        assert report.purged and report.killed
        assert any("old-looper" in name for name in report.interrupted)
        assert report.lingering == ()
        thread.join(5)
        assert outcome == ["CodePurged"]
        assert not code.check_old_code(pkg.mod("a"))
    finally:
        stop.set()
        thread.join(5)


def test_thread_that_left_old_code_does_not_block_soft_purge(pkg: Pkg) -> None:
    pkg.write("a", LOOPER)
    a = pkg.imp("a")
    stop = threading.Event()
    thread = threading.Thread(target=a.spin, args=(stop,))
    thread.start()
    assert a.STARTED.wait(5)
    _upgrade(pkg, "a", LOOPER + "\nVERSION = 2\n")
    stop.set()
    thread.join(5)
    assert code.soft_purge(pkg.mod("a"))
    assert not code.check_old_code(pkg.mod("a"))


ASYNC_V1 = """
import asyncio
async def inner(gate):
    await gate.wait()
    return "v1"
async def serve(gate):
    return await inner(gate)
"""


def test_suspended_task_in_old_code_is_detected_and_cancelled_by_purge(
    pkg: Pkg, loop_thread: asyncio.AbstractEventLoop
) -> None:
    pkg.write("a", ASYNC_V1)
    a = pkg.imp("a")

    async def start() -> asyncio.Task[str]:
        gate = asyncio.Event()
        return asyncio.ensure_future(a.serve(gate))

    task = asyncio.run_coroutine_threadsafe(start(), loop_thread).result(5)
    wait_until(lambda: task.get_coro().cr_await is not None, timeout=5, message="task suspended")
    _upgrade(pkg, "a", ASYNC_V1.replace('"v1"', '"v2"'))
    assert code.check_process_code(task, pkg.mod("a"))
    assert code.soft_purge(pkg.mod("a")) is False
    report = code.purge(pkg.mod("a"), timeout=5)
    assert report.purged and len(report.cancelled) == 1 and report.interrupted == ()
    assert report.closed == ()  # its suspended coroutines are the task's, not closed apart
    assert task.cancelled()


def test_task_driving_old_async_generator_through_async_for_is_detected(
    pkg: Pkg, loop_thread: asyncio.AbstractEventLoop
) -> None:
    pkg.write(
        "a",
        """
        async def ticks(gate):
            while True:
                await gate.wait()
                yield 1
        """,
    )
    a = pkg.imp("a")
    gate_box: list[asyncio.Event] = []

    async def consume() -> None:
        gate_box.append(asyncio.Event())
        async for _ in a.ticks(gate_box[0]):
            pass

    async def start() -> asyncio.Task[None]:
        return asyncio.ensure_future(consume())

    task = asyncio.run_coroutine_threadsafe(start(), loop_thread).result(5)
    wait_until(lambda: gate_box and task.get_coro().cr_await is not None, timeout=5)
    pkg.write("a", "async def ticks(gate):\n    yield 2\n")
    code.load_file(pkg.mod("a"))
    assert code.check_process_code(task, pkg.mod("a"))
    report = code.purge(pkg.mod("a"), timeout=5)
    assert len(report.cancelled) == 1 and report.closed == ()
    wait_until(task.done, timeout=5)


def test_thread_blocked_in_c_call_is_reported_lingering(pkg: Pkg) -> None:
    pkg.write(
        "a",
        """
        import threading
        ENTERED = threading.Event()
        def block(release):
            ENTERED.set()
            release.acquire()
        """,
    )
    a = pkg.imp("a")
    release = threading.Lock()
    release.acquire()
    outcome: list[str] = []

    def run() -> None:
        try:
            a.block(release)
        except BaseException as exc:
            outcome.append(type(exc).__name__)

    thread = threading.Thread(target=run, name="blocked")
    thread.start()
    try:
        assert a.ENTERED.wait(5)
        _upgrade(pkg, "a", "def block(release):\n    pass\n")
        report = code.purge(pkg.mod("a"), timeout=0.2)
        assert report.purged
        assert any("blocked" in name for name in report.interrupted)
        assert any("blocked" in name for name in report.lingering)
    finally:
        release.release()
        thread.join(5)
    # The exception is delivered once the C call returns to Python.
    assert outcome == ["CodePurged"]
