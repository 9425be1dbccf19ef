"""Carrying state over while old code keeps serving it: ``__code_change__`` under suspension.

The proof converts 50,000 sessions from lists to objects while four threads
keep calling the module (through the module, as the how-to teaches) and count
every error they see; afterwards every session is converted and no increment
was lost.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import hotmesh.code as code
from hotmesh import LoadError
from hotmesh.code import suspend

from .conftest import Pkg

SESSIONS_V1 = """
import hotmesh.code
SESSIONS = hotmesh.code.keep("SESSIONS", dict)

def open_all(count):
    for key in range(count):
        SESSIONS[key] = ["user%d" % key, 0]          # version 1: [user, hits]

def touch(key):
    entry = SESSIONS[key]
    entry[1] += 1
    return entry[0]
"""

SESSIONS_V2 = """
import hotmesh.code
SESSIONS = hotmesh.code.keep("SESSIONS", dict)

class Session:
    __slots__ = ("user", "hits")
    def __init__(self, user, hits):
        self.user, self.hits = user, hits

def touch(key):
    session = SESSIONS[key]
    session.hits += 1
    return session.user

def __code_change__(old_namespace, old_version):
    # Build every new object first (may fail: nothing is mutated yet), then swap them in.
    converted = {
        key: Session(*value) if isinstance(value, list) else value
        for key, value in SESSIONS.items()
    }
    SESSIONS.update(converted)
"""

REVERTIBLE = (
    SESSIONS_V2
    + """
def __code_revert__(old_namespace, old_version):
    back = {
        key: [value.user, value.hits]
        for key, value in SESSIONS.items()
        if isinstance(value, Session)
    }
    SESSIONS.update(back)
"""
)

COUNT = 50_000


class Traffic:
    """Threads calling ``module.touch`` through the module, counting calls and errors."""

    def __init__(self, module: Any, threads: int = 4) -> None:
        self.module = module
        self.stop = threading.Event()
        self.calls = [0] * threads
        self.errors: list[str] = []
        self.threads = [
            threading.Thread(target=self._serve, args=(i,), daemon=True) for i in range(threads)
        ]

    def _serve(self, index: int) -> None:
        key = index * 7919
        while not self.stop.is_set():
            key = (key + 104729) % COUNT
            try:
                self.module.touch(key)
            except Exception as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            else:
                self.calls[index] += 1

    def __enter__(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)


@pytest.fixture
def sessions(pkg: Pkg) -> Iterator[Any]:
    pkg.write("sessions", SESSIONS_V1)
    module = pkg.imp("sessions")
    module.open_all(COUNT)
    yield module


def _hits(value: Any) -> int:
    return value[1] if isinstance(value, list) else value.hits


def test_50000_objects_converted_while_old_code_serves_them(pkg: Pkg, sessions: Any) -> None:
    with Traffic(sessions) as traffic:
        while sum(traffic.calls) < 2_000 and not traffic.errors:
            threading.Event().wait(0.001)
        before = sum(traffic.calls)
        pkg.write("sessions", SESSIONS_V2)
        code.load_file(pkg.mod("sessions"))
        switched = sum(traffic.calls)
        while sum(traffic.calls) < switched + 2_000 and not traffic.errors:
            threading.Event().wait(0.001)
    assert traffic.errors == []
    table = sessions.SESSIONS
    assert len(table) == COUNT
    assert all(type(value).__name__ == "Session" for value in table.values())
    # Every call that returned counted exactly once, in whichever version served it.
    assert sum(_hits(value) for value in table.values()) == sum(traffic.calls)
    assert before >= 2_000 and sum(traffic.calls) >= switched + 2_000


def _more_calls(traffic: Traffic, count: int) -> None:
    start = sum(traffic.calls)
    while sum(traffic.calls) < start + count and not traffic.errors:
        threading.Event().wait(0.001)


def test_revert_converts_back_under_suspension(pkg: Pkg, sessions: Any) -> None:
    mod = pkg.mod("sessions")
    with Traffic(sessions) as traffic:
        _more_calls(traffic, 1_000)
        pkg.write("sessions", REVERTIBLE)
        code.load_file(mod)
        _more_calls(traffic, 1_000)
        v2 = code.current_version(mod)
        code.revert([mod])
        _more_calls(traffic, 1_000)
    assert traffic.errors == []
    assert code.old_version(mod) is v2
    assert all(isinstance(value, list) for value in sessions.SESSIONS.values())
    assert sum(_hits(value) for value in sessions.SESSIONS.values()) == sum(traffic.calls)


def test_failing_code_change_changes_nothing_and_old_code_keeps_serving(
    pkg: Pkg, sessions: Any
) -> None:
    failing = SESSIONS_V2.replace(
        "    SESSIONS.update(converted)",
        "    raise ValueError('refuse')\n    SESSIONS.update(converted)",
    )
    before = code.current_version(pkg.mod("sessions"))
    with Traffic(sessions) as traffic:
        pkg.write("sessions", failing)
        with pytest.raises(LoadError, match="__code_change__ hook: ValueError: refuse"):
            code.load_file(pkg.mod("sessions"))
        count = sum(traffic.calls)
        while sum(traffic.calls) < count + 1_000 and not traffic.errors:
            threading.Event().wait(0.001)
    assert traffic.errors == []
    assert code.current_version(pkg.mod("sessions")) is before
    assert code.old_version(pkg.mod("sessions")) is None
    assert all(isinstance(value, list) for value in sessions.SESSIONS.values())


def test_old_code_that_does_not_drain_fails_the_load_cleanly(
    pkg: Pkg, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg.write(
        "busy",
        """
        import threading
        STARTED = threading.Event()
        def serve(stop):
            STARTED.set()
            stop.wait()
        def ping():
            return 1
        """,
    )
    busy = pkg.imp("busy")
    stop = threading.Event()
    thread = threading.Thread(target=busy.serve, args=(stop,), daemon=True)
    thread.start()
    monkeypatch.setattr(suspend, "TIMEOUT", 0.2)
    try:
        assert busy.STARTED.wait(5)
        before = code.current_version(pkg.mod("busy"))
        pkg.write(
            "busy",
            "def serve(stop):\n    pass\n"
            "def ping():\n    return 2\n"
            "def __code_change__(old, version):\n    pass\n",
        )
        with pytest.raises(LoadError, match="still running the version being left"):
            code.load_file(pkg.mod("busy"))
        assert code.current_version(pkg.mod("busy")) is before
        assert busy.ping() == 1  # the facade shows the old version again
    finally:
        stop.set()
        thread.join(5)


def test_async_callers_wait_without_blocking_their_loop(pkg: Pkg) -> None:
    pkg.write(
        "svc",
        """
        import asyncio
        async def handle(x):
            await asyncio.sleep(0)
            return ("v1", x)
        """,
    )
    svc = pkg.imp("svc")
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    results: list[Any] = []
    stop = threading.Event()

    async def clients() -> None:
        async def one(i: int) -> None:
            while not stop.is_set():
                results.append(await svc.handle(i))

        await asyncio.gather(*(one(i) for i in range(4)))

    try:
        done = asyncio.run_coroutine_threadsafe(clients(), loop)
        while len(results) < 50:
            threading.Event().wait(0.001)
        pkg.write(
            "svc",
            """
            import asyncio
            async def handle(x):
                await asyncio.sleep(0)
                return ("v2", x)
            def __code_change__(old, version):
                pass
            """,
        )
        code.load_file(pkg.mod("svc"))
        loaded = len(results)
        while len(results) < loaded + 50:
            threading.Event().wait(0.001)
        stop.set()
        done.result(10)
        tags = [tag for tag, _x in results]
        # Old calls all finished before the switch; every later call ran version 2.
        assert tags[0] == "v1" and tags[-1] == "v2" and tags == sorted(tags)
    finally:
        stop.set()
        loop.call_soon_threadsafe(loop.stop)
        runner.join(5)
        loop.close()


def test_plain_calls_from_an_event_loop_do_not_stall_the_old_coroutines(
    pkg: Pkg, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg.write(
        "mix",
        """
        import asyncio
        async def slow():
            await asyncio.sleep(0.3)
            return "old"
        def helper(x):
            return x + 1
        """,
    )
    mix = pkg.imp("mix")
    monkeypatch.setattr(suspend, "TIMEOUT", 3.0)
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    stop = threading.Event()

    async def busy() -> int:
        calls = 0
        while not stop.is_set():
            calls += mix.helper(0)  # a plain call, made on the loop's thread
            await asyncio.sleep(0)
        return calls

    try:
        slow = asyncio.run_coroutine_threadsafe(mix.slow(), loop)
        calls = asyncio.run_coroutine_threadsafe(busy(), loop)
        pkg.write(
            "mix",
            """
            import asyncio
            async def slow():
                return "new"
            def helper(x):
                return x + 2
            def __code_change__(old, version):
                pass
            """,
        )
        code.load_file(pkg.mod("mix"))  # waits for `slow`, which needs the loop to run
        assert slow.result(5) == "old"
        assert mix.helper(0) == 2
        stop.set()
        assert calls.result(5) > 0
    finally:
        stop.set()
        loop.call_soon_threadsafe(loop.stop)
        runner.join(5)
        loop.close()
