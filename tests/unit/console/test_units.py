"""Pure pieces of the console: cells, leases, outbox batching, stream proxies, interrupts."""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import hotmesh
from hotmesh import NodeDown, RemoteError
from hotmesh._console.cell import compile_cell, format_exception, pretty, safe_repr
from hotmesh._console.interrupt import SessionInterrupt, SleepGate, raise_in_thread
from hotmesh._console.leases import Detach, LeaseBook, Reap
from hotmesh._console.output import Outbox
from hotmesh._console.routing import Route, RoutedStream, current_route
from hotmesh._console.timers import Timers
from tests.waiting import wait_until


@pytest.fixture
def timers() -> Iterator[Timers]:
    timers = Timers()
    try:
        yield timers
    finally:
        timers.stop()


def test_cell_echoes_each_top_level_expression_only() -> None:
    steps = compile_cell("x = 1\nx\nif x:\n    x + 1\nx + 2\n", "<console t #1>")
    assert [step.echo for step in steps] == [False, True, False, True]


def test_cell_source_is_visible_to_inspect() -> None:
    namespace: dict[str, Any] = {}
    for step in compile_cell("def f():\n    return 42\n", "<console t #2>"):
        exec(step.code, namespace)
    assert inspect.getsource(namespace["f"]) == "def f():\n    return 42\n"


def test_top_level_await_is_compiled_as_a_coroutine() -> None:
    (step,) = compile_cell("await something()", "<console t #3>")
    assert step.is_coroutine and step.echo


def test_syntax_error_is_raised_before_anything_runs() -> None:
    with pytest.raises(SyntaxError):
        compile_cell("print('no')\ndef broken(:\n", "<console t #4>")


def test_traceback_names_the_cell_and_renames_our_interrupt() -> None:
    namespace: dict[str, Any] = {}
    (step,) = compile_cell("raise SessionInterrupt", "<console t #5>")
    namespace["SessionInterrupt"] = SessionInterrupt
    try:
        exec(step.code, namespace)
    except SessionInterrupt as exc:
        text = format_exception(exc, (__file__,), as_type=KeyboardInterrupt)
    assert 'File "<console t #5>", line 1' in text and text.endswith("KeyboardInterrupt\n")


def test_safe_repr_survives_a_failing_repr_and_caps_size() -> None:
    class Bad:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert "repr of Bad failed" in safe_repr(Bad())
    assert len(safe_repr("x" * 1_000_000)) < 300_000


def test_lease_expires_then_idle_detached_session_is_reaped() -> None:
    book = LeaseBook(lease=10.0, idle_timeout=60.0)
    book.heard("s", now=0.0)
    assert book.tick(now=9.0, busy=set()) == []
    assert book.tick(now=10.5, busy={"s"}) == [Detach("s")]
    assert book.tick(now=100.0, busy={"s"}) == []  # still running: kept
    assert book.tick(now=101.0, busy=set()) == []  # idle from now on
    assert book.tick(now=161.5, busy=set()) == [Reap("s")]


def test_client_that_comes_back_is_attached_again() -> None:
    book = LeaseBook(lease=1.0, idle_timeout=5.0)
    book.heard("s", now=0.0)
    assert book.tick(now=2.0, busy=set()) == [Detach("s")]
    book.heard("s", now=3.0)
    assert not book.is_detached("s")
    assert book.tick(now=20.0, busy=set()) == [Detach("s"), Reap("s")]


def test_outbox_merges_writes_and_keeps_order_with_messages(timers: Timers) -> None:
    sent: list[dict[str, Any]] = []
    outbox = Outbox("s1", sent.append, timers, delay=10.0)
    outbox.write("stdout", "a", 1)
    outbox.write("stdout", "b\n", 1)
    outbox.write("stderr", "oops\n", 1)
    outbox.send({"t": "console.done", "rid": 1})
    assert [(m["t"], m.get("text"), m["seq"]) for m in sent] == [
        ("console.out", "ab\n", 1),
        ("console.out", "oops\n", 2),
        ("console.done", None, 3),
    ]


def test_outbox_flushes_after_its_delay_and_cuts_huge_writes(timers: Timers) -> None:
    sent: list[dict[str, Any]] = []
    outbox = Outbox("s1", sent.append, timers, delay=0.01, max_bytes=1000)
    outbox.write("stdout", "tick\n", 1)
    wait_until(lambda: sent, timeout=5, message="timer flush")
    outbox.write("stdout", "x" * 2500, 1)
    wait_until(lambda: len(sent) == 4, timeout=5, message="the tail flushed by the timer")
    assert [len(m["text"]) for m in sent[1:]] == [1000, 1000, 500]


def _acking(sent: list[dict[str, Any]], outbox: Outbox) -> Callable[[], None]:
    """Acknowledge everything sent so far (what a client that caught up does)."""

    def ack() -> None:
        if sent:
            outbox.acked(sent[-1]["seq"])

    return ack


def test_outbox_makes_a_writer_thread_wait_for_the_client_and_loses_nothing(
    timers: Timers,
) -> None:
    sent: list[dict[str, Any]] = []
    outbox = Outbox("s1", sent.append, timers, delay=10.0, max_bytes=10, window=4)
    outbox.add_writer_thread()
    done = threading.Event()

    def writer() -> None:
        outbox.add_writer_thread()
        for i in range(100):
            outbox.write("stdout", f"{i:09d}\n", 1)
        outbox.send({"t": "console.done", "rid": 1})
        done.set()

    threading.Thread(target=writer, daemon=True).start()
    wait_until(lambda: len(sent) == 4, timeout=5, message="a full window")
    assert not done.wait(0.2) and len(sent) == 4  # waits: the client is behind
    ack = _acking(sent, outbox)
    while not done.is_set():
        ack()
        assert outbox.in_flight <= 4
        wait_until(lambda: outbox.in_flight == 4 or done.is_set(), timeout=5)
    text = "".join(m.get("text", "") for m in sent)
    assert text == "".join(f"{i:09d}\n" for i in range(100))
    assert sent[-1]["t"] == "console.done"


def test_outbox_never_blocks_other_threads_and_says_what_it_dropped(timers: Timers) -> None:
    sent: list[dict[str, Any]] = []
    outbox = Outbox("s1", sent.append, timers, delay=0.01, max_bytes=10, window=2, overflow=50)
    for _ in range(20):
        outbox.write("stderr", "log line\n", 0)  # a service thread's log record
    assert len(sent) == 2  # the window; the rest queued up to the overflow limit
    while True:
        before = len(sent)
        outbox.acked(sent[-1]["seq"])
        outbox.flush()
        if len(sent) == before:
            break
    texts = [m["text"] for m in sent]
    notes = [t for t in texts if "characters of output dropped" in t]
    kept = "".join(t for t in texts if t not in notes)
    dropped = int(notes[0].split("[")[1].split()[0])
    assert len(notes) == 1 and len(kept) + dropped == 20 * len("log line\n")


def test_outbox_of_a_detached_client_no_longer_waits(timers: Timers) -> None:
    sent: list[dict[str, Any]] = []
    outbox = Outbox("s1", sent.append, timers, delay=10.0, max_bytes=10, window=2)
    outbox.add_writer_thread()
    outbox.write("stdout", "x" * 20, 1)
    outbox.detach()
    outbox.write("stdout", "y" * 30, 1)
    outbox.send({"t": "console.done", "rid": 1})
    assert sent[-1]["t"] == "console.done" and len(sent) == 6


def test_a_writer_waiting_for_the_client_can_be_interrupted(timers: Timers) -> None:
    outbox = Outbox("s1", lambda m: None, timers, delay=10.0, max_bytes=10, window=1)
    raised: list[BaseException] = []
    waiting = threading.Event()

    def writer() -> None:
        outbox.add_writer_thread()
        outbox.write("stdout", "x" * 10, 1)  # fills the window
        waiting.set()
        try:
            outbox.write("stdout", "y" * 10, 1)
        except KeyboardInterrupt as exc:
            raised.append(exc)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    waiting.wait(5)
    wait_until(lambda: raise_in_thread(thread.ident or 0), timeout=5)
    thread.join(5)
    assert raised and not thread.is_alive()


def test_routed_stream_sends_session_output_and_passes_the_rest(timers: Timers) -> None:
    sent: list[dict[str, Any]] = []
    outbox = Outbox("s1", sent.append, timers, delay=10.0)
    written: list[str] = []

    class Sink:
        def write(self, text: str) -> int:
            written.append(text)
            return len(text)

    stream = RoutedStream("stdout", Sink())  # type: ignore[arg-type]
    stream.write("app\n")
    token = current_route.set(Route(outbox, 7, lambda: ""))
    try:
        stream.write("session\n")
        stream.flush()
    finally:
        current_route.reset(token)
    assert written == ["app\n"] and sent[0]["text"] == "session\n" and sent[0]["rid"] == 7
    assert RoutedStream("stdout", None).write("nowhere") == 7


def test_interrupt_ends_a_registered_sleep_once() -> None:
    gate = SleepGate()
    gate.install()
    outcome: list[str] = []
    started = threading.Event()

    def sleeper() -> None:
        gate.register(threading.get_ident())
        import time

        started.set()
        try:
            time.sleep(60)
        except KeyboardInterrupt:
            time.sleep(0.001)  # a second sleep is not interrupted again
            outcome.append("interrupted")
        finally:
            gate.unregister(threading.get_ident())

    thread = threading.Thread(target=sleeper)
    try:
        thread.start()
        started.wait(5)
        wait_until(lambda: gate.interrupt(thread.ident or 0), timeout=5, message="interrupt")
        thread.join(10)
    finally:
        gate.uninstall()
    assert outcome == ["interrupted"]


def _raise_through(frames: list[tuple[str, str]]) -> BaseException:
    """Raise ValueError('boom') through functions compiled under the given file names.

    ``frames`` are (filename, name) from the outermost in; the last raises.
    """
    namespace: dict[str, Any] = {}
    for index, (filename, name) in enumerate(frames):
        callee = frames[index + 1][1] if index + 1 < len(frames) else None
        body = f"    return {callee}()\n" if callee else "    raise ValueError('boom')\n"
        exec(compile(f"def {name}():\n{body}", filename, "exec"), namespace)
    try:
        namespace[frames[0][1]]()
    except ValueError as exc:
        return exc
    raise AssertionError("did not raise")


def test_traceback_shows_the_users_frames_only_and_the_message_once() -> None:
    inside = os.path.join(os.path.dirname(hotmesh.__file__), "_rpc", "dispatch.py")
    exc = _raise_through(
        [("<console s1 #1>", "cell"), (inside, "dispatch"), ("/srv/app/orders.py", "place")]
    )
    text = format_exception(exc)
    assert '"<console s1 #1>"' in text and '"/srv/app/orders.py"' in text
    assert "dispatch" not in text and text.count("boom") == 1


def test_remote_traceback_shows_the_remote_users_frames_after_the_local_ones() -> None:
    remote = (
        "Traceback (most recent call last):\n"
        '  File "/opt/venv/lib/python3.12/site-packages/hotmesh/_rpc/dispatch.py", line 103, '
        "in execute\n    value = fn(*args, **kwargs)\n            ^^^^^^^^^^^^^^^^^^^\n"
        "  File \"/srv/app/orders.py\", line 7, in place\n    raise ValueError('boom')\n"
        "ValueError: boom\n"
    )
    error = RemoteError("b@h", "ValueError", "boom", remote)
    try:
        raise error
    except RemoteError as exc:
        text = format_exception(exc)
    assert "dispatch" not in text and '"/srv/app/orders.py", line 7' in text
    assert "--- on b@h ---" in text and text.count("boom") == 2  # the source line, the message
    assert text.endswith("hotmesh.RemoteError: ValueError: boom (on b@h)\n")


def test_hotmesh_errors_are_named_as_users_import_them() -> None:
    try:
        raise NodeDown("b@h")
    except NodeDown as exc:
        assert format_exception(exc).splitlines()[-1].startswith("hotmesh.NodeDown: ")


def test_results_are_laid_out_over_lines_when_they_do_not_fit() -> None:
    table = {f"app{i}@web{i % 3}": {"version": "v2+3fa9c1d2", "up": True} for i in range(24)}
    text = pretty(table, width=100)
    lines = text.splitlines()
    assert len(lines) == 24 and all(f"'app{i}@web{i % 3}'" in lines[i] for i in range(24))
    assert eval(text) == table  # still the value's repr, only laid out
    assert pretty([1, 2, 3]) == "[1, 2, 3]"

    class Custom:
        def __repr__(self) -> str:
            return "<custom " + "x" * 200 + ">"

    assert pretty(Custom()) == repr(Custom())


def test_timers_start_their_thread_with_the_first_callback() -> None:
    # Every node's console server has one; few nodes ever serve a console.
    before = {t.name for t in threading.enumerate()}
    timers = Timers(name="lazy-timers-test")
    try:
        assert "lazy-timers-test" not in {t.name for t in threading.enumerate()} - before
        ran = threading.Event()
        timers.call_later(0.0, ran.set)
        assert ran.wait(5)
    finally:
        timers.stop()
    Timers(name="never-used").stop()  # stops without a thread to join
