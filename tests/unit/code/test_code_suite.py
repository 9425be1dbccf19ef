"""Cases of Erlang/OTP's code_SUITE, mapped onto hotmesh.code (our own tests, same intent).

Erlang processes map to threads, asyncio tasks, and generators or coroutines
suspended in old code; ``{'EXIT', badarg}`` maps to TypeError.
"""

from __future__ import annotations

import asyncio
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import hotmesh.code as code
from hotmesh import CodeError, LoadError
from tests.waiting import wait_until

from .conftest import Pkg

WORKER = """
import threading
STARTED = threading.Event()
ENTERED = []
def serve(stop):
    ENTERED.append(1)
    STARTED.set()
    while not stop.is_set():
        stop.wait(0.001)
"""

BAD_CALLS: list[tuple[str, Callable[[], Any]]] = [
    ("is_loaded(23)", lambda: code.is_loaded(23)),  # type: ignore[arg-type]
    ("soft_purge(23)", lambda: code.soft_purge(23)),  # type: ignore[arg-type]
    ("purge({})", lambda: code.purge({})),  # type: ignore[arg-type]
    ("purge(timeout='1')", lambda: code.purge("m", timeout="1")),  # type: ignore[arg-type]
    ("delete(122)", lambda: code.delete(122)),  # type: ignore[arg-type]
    ("load_file(123)", lambda: code.load_file(123)),  # type: ignore[arg-type]
    ("load_file(force='no')", lambda: code.load_file("m", force="no")),  # type: ignore[arg-type]
    ("load_binary(12, f, s)", lambda: code.load_binary(12, "f.py", "X = 1\n")),  # type: ignore[arg-type]
    ("load_binary(m, 12, s)", lambda: code.load_binary("m", 12, "X = 1\n")),  # type: ignore[arg-type]
    ("load_binary(m, f, 12)", lambda: code.load_binary("m", "f.py", 12)),  # type: ignore[arg-type]
    ("atomic_load('a.b')", lambda: code.atomic_load("a.b")),
    ("atomic_load([1])", lambda: code.atomic_load([1])),  # type: ignore[list-item]
    ("prepare_loading(3)", lambda: code.prepare_loading(3)),  # type: ignore[arg-type]
    ("finish_loading({})", lambda: code.finish_loading({})),  # type: ignore[arg-type]
    ("check_old_code(23)", lambda: code.check_old_code(23)),  # type: ignore[arg-type]
    ("check_process_code(t, 23)", lambda: code.check_process_code(threading.current_thread(), 23)),  # type: ignore[arg-type]
    ("check_process_code('x', m)", lambda: code.check_process_code("x", "m")),
    ("which(23)", lambda: code.which(23)),  # type: ignore[arg-type]
    ("module_status(23)", lambda: code.module_status(23)),  # type: ignore[arg-type]
    ("current_version(23)", lambda: code.current_version(23)),  # type: ignore[arg-type]
    ("old_version(23)", lambda: code.old_version(23)),  # type: ignore[arg-type]
    ("is_managed(23)", lambda: code.is_managed(23)),  # type: ignore[arg-type]
    ("revert('a.b')", lambda: code.revert("a.b")),
    ("xref(None)", lambda: code.xref(None)),  # type: ignore[arg-type]
    ("dependents('a.b')", lambda: code.dependents("a.b")),
    ("stale_references(23)", lambda: code.stale_references(23)),  # type: ignore[arg-type]
    ("stale_references_of('a.b')", lambda: code.stale_references_of("a.b")),
    ("add_root(23)", lambda: code.add_root(23)),  # type: ignore[arg-type]
    ("add_root(allow_sticky=1)", lambda: code.add_root("x", allow_sticky=1)),  # type: ignore[arg-type]
    ("keep(23, dict)", lambda: code.keep(23, dict)),  # type: ignore[arg-type]
    ("keep('x', 5)", lambda: code.keep("x", 5)),  # type: ignore[arg-type]
]


@pytest.mark.parametrize("call", [c for _label, c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS])
def test_every_function_rejects_a_bad_argument_type_and_changes_nothing(
    pkg: Pkg, call: Callable[[], Any]
) -> None:
    pkg.write("a", "X = 1\n")
    pkg.imp("a")
    before = (code.roots(), code.all_versions())
    with pytest.raises(TypeError):
        call()
    assert (code.roots(), code.all_versions()) == before


def test_load_file_of_missing_module_is_an_error_and_nothing_is_loaded(pkg: Pkg) -> None:
    with pytest.raises(LoadError):
        code.load_file(pkg.mod("duuuumy_mod"))
    assert not code.is_loaded(pkg.mod("duuuumy_mod"))


def _thread(target: Callable[..., Any], *args: Any) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def worker(pkg: Pkg) -> Iterator[tuple[Any, threading.Event]]:
    """Module ``a`` (WORKER) imported, and a stop event set at teardown."""
    pkg.write("a", WORKER)
    stop = threading.Event()
    try:
        yield pkg.imp("a"), stop
    finally:
        stop.set()


def test_delete_leaves_running_code_alone_and_refuses_a_second_delete(
    pkg: Pkg, worker: tuple[Any, threading.Event]
) -> None:
    a, stop = worker
    thread = _thread(a.serve, stop)
    assert a.STARTED.wait(5)
    code.delete(pkg.mod("a"))
    assert thread.is_alive() and code.check_process_code(thread, pkg.mod("a"))
    with pytest.raises(CodeError):  # Erlang's delete returns false: nothing current
        code.delete(pkg.mod("a"))
    stop.set()
    thread.join(5)
    assert code.soft_purge(pkg.mod("a"))


def test_purge_without_old_code_kills_nothing_and_after_delete_kills_the_runner(
    pkg: Pkg, worker: tuple[Any, threading.Event]
) -> None:
    a, stop = worker
    report = code.purge(pkg.mod("a"))
    assert (report.purged, report.killed) == (False, False)
    outcome: list[str] = []

    def run() -> None:
        try:
            a.serve(stop)
        except BaseException as exc:
            outcome.append(type(exc).__name__)

    thread = _thread(run)
    assert a.STARTED.wait(5)
    code.delete(pkg.mod("a"))
    report = code.purge(pkg.mod("a"), timeout=5)
    assert report.purged and report.killed and report.lingering == ()
    thread.join(5)
    assert outcome == ["CodePurged"]


def test_purge_stops_exactly_the_threads_in_old_code(
    pkg: Pkg, worker: tuple[Any, threading.Event]
) -> None:
    a, stop = worker
    ended: list[str] = []

    def old() -> None:
        try:
            a.serve(stop)
        except BaseException as exc:
            ended.append(type(exc).__name__)

    olds = [_thread(old) for _ in range(20)]
    others = [_thread(stop.wait) for _ in range(20)]
    wait_until(lambda: len(a.ENTERED) == 20, timeout=5)
    code.delete(pkg.mod("a"))
    report = code.purge(pkg.mod("a"), timeout=5)
    assert len(report.interrupted) == 20 and report.lingering == ()
    for thread in olds:
        thread.join(5)
    assert ended == ["CodePurged"] * 20
    assert all(thread.is_alive() for thread in others)


def test_soft_purge_waits_for_the_runner_to_leave(
    pkg: Pkg, worker: tuple[Any, threading.Event]
) -> None:
    a, stop = worker
    assert code.soft_purge(pkg.mod("a"))  # nothing old: true
    thread = _thread(a.serve, stop)
    assert a.STARTED.wait(5)
    code.delete(pkg.mod("a"))
    assert code.soft_purge(pkg.mod("a")) is False
    assert code.check_old_code(pkg.mod("a"))
    stop.set()
    thread.join(5)
    assert code.soft_purge(pkg.mod("a"))
    assert not code.check_old_code(pkg.mod("a"))


def test_is_loaded_and_which(pkg: Pkg) -> None:
    assert code.is_loaded(pkg.mod("duuuumy")) is False
    path = pkg.write("a", "X = 1\n")
    pkg.imp("a")
    assert code.is_loaded(pkg.mod("a")) and code.which(pkg.mod("a")) == str(path)


def test_a_caught_traceback_through_old_code_does_not_keep_it_running(pkg: Pkg) -> None:
    pkg.write("a", "def call(f, x):\n    return f(x)\n")
    a = pkg.imp("a")
    try:
        a.call(lambda x: 1 / x, 0)
    except ZeroDivisionError as exc:
        held = exc  # its traceback holds a finished frame of version 1
    pkg.write("a", "def call(f, x):\n    return f(x) + 0\n")
    code.load_file(pkg.mod("a"))
    assert any(f.name == "call" for f in traceback.extract_tb(held.__traceback__))
    report = code.purge(pkg.mod("a"))
    assert report.purged and not report.killed


GENERATORS = """
import asyncio
def numbers():
    yield 1
    yield 2
async def waiting():
    await asyncio.sleep(0)
    return "old"
async def ticks():
    yield 1
    yield 2
class Box:
    def items(self):
        yield from (1, 2)
"""


def _reload(pkg: Pkg) -> None:
    pkg.write("g", GENERATORS + "\nV = 2\n")
    code.load_file(pkg.mod("g"))


def _finish(thing: Any) -> None:
    if hasattr(thing, "aclose"):
        with pytest.raises(StopIteration):
            thing.aclose().send(None)
    else:
        thing.close()


def _suspended_things(g: Any) -> dict[str, Any]:
    numbers = g.numbers()
    next(numbers)
    coroutine = g.waiting()
    coroutine.send(None)  # suspended at the sleep, driven by hand: no task owns it
    ticks = g.ticks()
    with pytest.raises(StopIteration):
        ticks.asend(None).send(None)  # first item produced; suspended at the yield
    items = g.Box().items()
    next(items)
    return {"generator": numbers, "coroutine": coroutine, "async generator": ticks, "method": items}


@pytest.mark.parametrize("kind", ["generator", "coroutine", "async generator", "method"])
def test_a_suspended_generator_keeps_old_code_in_use_until_purge_closes_it(
    pkg: Pkg, kind: str
) -> None:
    pkg.write("g", GENERATORS)
    g = pkg.imp("g")
    things = _suspended_things(g)
    thing = things.pop(kind)
    for other in things.values():
        _finish(other)
    _reload(pkg)
    mod = pkg.mod("g")
    assert code.check_old_code(mod)
    assert code.check_process_code(thing, mod)
    assert code.soft_purge(mod) is False
    assert code.check_old_code(mod)
    report = code.purge(mod, timeout=1)
    assert report.purged and report.killed
    assert len(report.closed) == 1 and report.lingering == ()
    assert kind.split()[-1] in report.closed[0] or kind == "method"
    frame = getattr(thing, "gi_frame", getattr(thing, "cr_frame", getattr(thing, "ag_frame", 1)))
    assert frame is None  # finished: it will never run old code again


def test_generators_not_started_count_and_finished_ones_do_not(pkg: Pkg) -> None:
    pkg.write("g", GENERATORS)
    g = pkg.imp("g")
    fresh = g.numbers()
    done = g.numbers()
    list(done)
    _reload(pkg)
    assert code.check_process_code(fresh, pkg.mod("g"))
    assert not code.check_process_code(done, pkg.mod("g"))
    assert code.soft_purge(pkg.mod("g")) is False
    fresh.close()
    assert code.soft_purge(pkg.mod("g"))


def test_generator_of_new_version_does_not_block_purging_the_old(pkg: Pkg) -> None:
    pkg.write("g", GENERATORS)
    g = pkg.imp("g")
    _reload(pkg)
    current = g.numbers()
    next(current)
    assert code.soft_purge(pkg.mod("g"))
    assert next(current) == 2


def test_generator_that_refuses_to_close_is_reported_lingering(pkg: Pkg) -> None:
    pkg.write(
        "g",
        """
        FLAGS = []
        def stubborn():
            while True:
                try:
                    yield 1
                except GeneratorExit:
                    if FLAGS:
                        return
        """,
    )
    g = pkg.imp("g")
    flags = g.FLAGS
    gen = g.stubborn()
    next(gen)
    pkg.write("g", "def stubborn():\n    yield 2\n")
    code.load_file(pkg.mod("g"))
    report = code.purge(pkg.mod("g"), timeout=1)
    assert report.purged and report.closed == () and len(report.lingering) == 1
    flags.append("let go")
    gen.close()


def test_coroutine_in_a_task_counts_for_the_task_not_twice(pkg: Pkg) -> None:
    pkg.write("g", GENERATORS.replace("await asyncio.sleep(0)", "await asyncio.Event().wait()"))
    g = pkg.imp("g")
    loop = asyncio.new_event_loop()
    try:
        task = loop.create_task(g.waiting())
        loop.run_until_complete(asyncio.sleep(0))
        _reload(pkg)
        assert code.check_process_code(task, pkg.mod("g"))
        report = code.purge(pkg.mod("g"), timeout=0.2)
        # The loop does not run while purge blocks this thread: cancelled, not waited for.
        assert len(report.cancelled) == 1 and report.closed == ()
        loop.run_until_complete(asyncio.sleep(0))
        assert task.cancelled()
    finally:
        loop.close()


def test_old_version_source_file_removed_keeps_running(pkg: Pkg, tmp_path: Path) -> None:
    # code_SUITE's dir_disappeared: the loaded code does not depend on the file.
    path = pkg.write("a", "def f():\n    return 1\n")
    a = pkg.imp("a")
    path.unlink()
    assert a.f() == 1
    assert code.module_status(pkg.mod("a")) == "removed"
    with pytest.raises(LoadError):
        code.load_file(pkg.mod("a"))
    assert a.f() == 1
