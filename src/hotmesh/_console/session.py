"""A console session on the node: its namespace and the worker thread that runs
its statements one at a time, with output routed to its outbox (no network I/O)."""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hotmesh._console import protocol, routing
from hotmesh._console.cell import (
    compile_cell,
    exit_status,
    forget_sources,
    format_exception,
    is_statement_exit,
    pretty,
)
from hotmesh._console.interrupt import SessionInterrupt, SleepGate, sleep_gate
from hotmesh._console.output import Outbox
from hotmesh._console.routing import Route, current_route

if TYPE_CHECKING:
    import asyncio

Audit = Callable[[dict[str, Any]], None]
_OURS = os.path.dirname(__file__)


def _is_ours(filename: str) -> bool:
    return filename.startswith(_OURS)


class Session:
    """One attached console: a namespace and a worker thread.

    Statements queue up and run in order on the worker, never on the caller's
    thread; ``interrupt`` and ``answer`` act at once from any thread. A
    statement that raises SystemExit (``exit()``) ends the session, never the
    process. Every statement's text, outcome and duration go to ``audit``.
    """

    def __init__(
        self,
        sid: str,
        namespace: Callable[[], dict[str, Any]],
        outbox: Outbox,
        *,
        audit: Audit,
        on_end: Callable[[Session], None],
        on_start: Callable[[], None] = lambda: None,
        gate: SleepGate = sleep_gate,
        width: int = 80,
    ) -> None:
        self.sid = sid
        self.width = width  # the client's terminal: results are laid out to fit
        # Filled on the worker thread (building it imports the code server),
        # before the first statement and before ``on_start`` runs.
        self.namespace: dict[str, Any] = {}
        self._make_namespace = namespace
        self._on_start = on_start
        self.outbox = outbox
        self._audit = audit
        self._on_end = on_end
        self._gate = gate
        self._jobs: queue.SimpleQueue[tuple[int, str, str] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._input = threading.Condition(self._lock)
        self._running: int | None = None
        # The statement whose outcome is not yet audited: the session stays
        # busy until then, so a reaped session's detach follows its "done".
        self._unreported: int | None = None
        self._interrupt_requested = False
        self._answer: tuple[str, bool] | None = None
        self._in_input = False
        self._input_interrupt = False
        self._closing = False
        self._ended = threading.Event()
        self._task: asyncio.Task[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cells = itertools.count(1)
        # Statements left running on their thread (abandon): thread id -> rid.
        self._abandoned: dict[int, int] = {}
        self._queued = 0
        self._thread = threading.Thread(
            target=self._work, name=f"hotmesh-console-{sid}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    @property
    def is_busy(self) -> bool:
        """True while a statement runs or waits in the queue."""
        with self._lock:
            return self._running is not None or self._unreported is not None or self._queued > 0

    def is_current_thread(self) -> bool:
        """True when called from this session's worker or a statement it left running."""
        return threading.current_thread() is self._thread or (
            threading.get_ident() in self._abandoned
        )

    @property
    def has_ended(self) -> bool:
        return self._ended.is_set()

    def wait_ended(self, timeout: float) -> bool:
        return self._ended.wait(timeout)

    def submit(self, rid: int, code: str, name: str = "") -> None:
        """Queue cell ``code`` as statement ``rid``; its messages go to the outbox.

        ``name`` (a snippet's file name) shows in the cell's traceback lines.
        """
        with self._lock:
            self._queued += 1
        self._jobs.put((rid, code, name))

    def interrupt(self, rid: int | None = None) -> bool:
        """Raise KeyboardInterrupt in the running statement (``rid`` if given).

        Acts at once, from any thread. A statement blocked in a C call other
        than ``time.sleep`` or ``input()`` is interrupted when that call
        returns. Returns False when nothing (or another statement) runs.
        """
        with self._lock:
            left = [ident for ident, left_rid in self._abandoned.items() if left_rid == rid]
            if left:
                return self._gate.interrupt(left[0])
            if self._running is None or rid not in (None, self._running):
                return False
            self._interrupt_requested = True
            if self._task is not None and self._loop is not None:
                self._loop.call_soon_threadsafe(self._task.cancel)
            if self._in_input:
                # _read_line raises it itself, outside threading's internals.
                self._input_interrupt = True
                self._input.notify_all()
            else:
                self._gate.interrupt(self._thread.ident or 0)
        return True

    def abandon(self, rid: int) -> str | None:
        """Leave statement ``rid``, which does not stop, running on its thread.

        The session goes on at once on a fresh worker thread, with the same
        namespace (the statement left running may still change it); the
        statement's output and outcome still come, with its ``rid``, when it
        ends. Returns that thread's name, or None when ``rid`` is not running
        (it ended meanwhile: its outcome is on its way).
        """
        with self._lock:
            if self._running != rid or self._closing:
                return None
            left = self._thread
            self._abandoned[left.ident or 0] = rid
            self._running = None
            self._unreported = None
            self._task = None
            self._loop = None  # the statement keeps its own event loop
            self._thread = threading.Thread(
                target=self._work,
                args=(False,),
                name=f"hotmesh-console-{self.sid}-{len(self._abandoned) + 1}",
                daemon=True,
            )
            self._thread.start()
        return left.name

    def stack(self) -> str:
        """Where the running statement is now (its frames only); empty when idle."""
        with self._lock:
            if self._running is None:
                return ""
        frame = sys._current_frames().get(self._thread.ident or 0)
        frames = traceback.extract_stack(frame) if frame is not None else []
        mine = [f for f in frames if f.filename.startswith("<console ") or not _is_ours(f.filename)]
        while mine and not mine[0].filename.startswith("<console "):
            mine.pop(0)  # the worker's own frames, before the cell
        return "".join(traceback.format_list(mine))

    def answer(self, rid: int, text: str, eof: bool = False) -> None:
        """Deliver the client's answer to the ``input()`` that statement ``rid`` waits in."""
        with self._lock:
            if self._running == rid:
                self._answer = (text, eof)
                self._input.notify_all()

    def close(self) -> None:
        """End the session once the running statement (if any) finishes; queued ones are dropped."""
        with self._lock:
            self._closing = True
            self._input.notify_all()
        self._jobs.put(None)

    # -- worker thread ---------------------------------------------------------

    def _work(self, first: bool = True) -> None:
        ident = threading.get_ident()
        me = threading.current_thread()
        self._gate.register(ident)
        self.outbox.add_writer_thread(ident)
        try:
            if first:
                self.namespace.update(self._make_namespace())
                self._on_start()
            while me is self._thread:
                try:
                    job = self._jobs.get()
                    if job is None or self._closing:
                        break
                    self._execute(*job)
                except KeyboardInterrupt:
                    # An interrupt that arrived as a statement ended.
                    continue
        finally:
            self._gate.unregister(ident)
            self.outbox.remove_writer_thread(ident)
            with self._lock:
                left = self._abandoned.pop(ident, None) is not None
            if not left:
                self._end()

    def _end(self) -> None:
        if self._loop is not None:
            self._loop.close()
        forget_sources(f"<console {self.sid} ")
        self.outbox.close()
        self._ended.set()
        self._on_end(self)

    def _execute(self, rid: int, code: str, name: str) -> None:
        started = time.monotonic()
        suffix = f" {name}" if name else ""
        filename = f"<console {self.sid} #{next(self._cells)}{suffix}>"
        routing.ensure_installed()
        current_route.set(Route(self.outbox, rid, self._read_line))
        with self._lock:
            self._queued -= 1
            self._running = rid
            self._unreported = rid
            self._interrupt_requested = False
            self._input_interrupt = False
            self._answer = None
        # On record before it runs: a statement that ends the process
        # (os._exit, a crash in C) or never ends is still in the log.
        self._audit({"event": "exec", "sid": self.sid, "rid": rid, "code": code})
        try:
            error = self._run_cell(code, filename, rid)
        except KeyboardInterrupt as late:
            error = late
        status, exc_type, text = self._outcome(error)
        exit_code = None
        if status == "exit":
            assert isinstance(error, SystemExit)
            exit_code, message = exit_status(error)
            if message:
                self.outbox.write("stderr", message + "\n", rid)
        duration = time.monotonic() - started
        record: dict[str, Any] = {"event": "done", "sid": self.sid, "rid": rid}
        record.update(outcome=exc_type if status == "error" else status)
        record["duration"] = round(duration, 6)
        if exit_code is not None:
            record["exit_code"] = exit_code
        # Audited before the client hears the outcome, so that a detach it
        # sends next is always logged after this statement.
        self._audit(record)
        with self._lock:
            if self._unreported == rid:
                self._unreported = None
        self.outbox.send(protocol.done(rid, status, duration, exc_type, text, exit_code))
        if status == "exit" and threading.current_thread() is self._thread:
            self.close()  # (a statement that was left running ends only itself)

    def _run_cell(self, code: str, filename: str, rid: int) -> BaseException | None:
        try:
            try:
                steps = compile_cell(code, filename)
                for step in steps:
                    value = eval(step.code, self.namespace)
                    if step.is_coroutine:
                        value = self._run_coroutine(value)
                    if step.echo and value is not None:
                        self.namespace["_"] = value
                        shown = pretty(value, self.width)
                        self.outbox.send(protocol.result(rid, shown))
            except BaseException as exc:
                return exc
            return None
        finally:
            self._finish_running()

    def _finish_running(self) -> None:
        # No interrupt may land after this returns: mark the statement ended
        # and withdraw any asynchronous exception still pending.
        while True:
            try:
                with self._lock:
                    if threading.current_thread() is self._thread:
                        self._running = None
                        self._task = None
                self._gate.cancel(threading.get_ident())
                return
            except KeyboardInterrupt:
                continue

    def _run_coroutine(self, coro: Any) -> Any:
        if self._loop is None:
            import asyncio  # top-level await: only then (asyncio brings ssl, 8 MB)

            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
        loop = self._loop
        task = loop.create_task(coro)
        with self._lock:
            self._task = task
            if self._interrupt_requested:
                task.cancel()
        try:
            return loop.run_until_complete(task)
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    loop.run_until_complete(task)
            if loop is not self._loop:
                loop.close()  # a statement that was left running: its loop goes with it

    def _outcome(self, error: BaseException | None) -> tuple[str, str, str]:
        if error is None:
            return "ok", "", ""
        if isinstance(error, SystemExit) and is_statement_exit(error):
            return "exit", "SystemExit", ""
        aio = sys.modules.get("asyncio")  # not imported: nothing was cancelled
        interrupted = isinstance(error, KeyboardInterrupt) or (
            aio is not None and isinstance(error, aio.CancelledError) and self._interrupt_requested
        )
        if interrupted:
            text = format_exception(error, (__file__,), as_type=KeyboardInterrupt)
            return "interrupted", "KeyboardInterrupt", text
        return "error", type(error).__name__, format_exception(error, (__file__,))

    def _read_line(self) -> str:
        """``sys.stdin.readline()`` of session code: ask the client and wait."""
        route = current_route.get()
        rid = route.rid if route is not None else 0
        if threading.get_ident() != self._thread.ident:
            raise RuntimeError("input() from a thread other than the session's is not supported")
        with self._lock:
            # Set before asking, so an interrupt sent as soon as the question
            # arrives already finds the statement waiting here.
            self._in_input = True
        try:
            self.outbox.send(protocol.input_request(rid))
            with self._lock:
                while not (self._answer or self._closing or self._input_interrupt):
                    self._input.wait()
        finally:
            with self._lock:
                self._in_input = False
        with self._lock:
            answer, self._answer = self._answer, None
            interrupted, self._input_interrupt = self._input_interrupt, False
        if interrupted:
            raise SessionInterrupt
        if answer is None or answer[1]:
            return ""
        return answer[0] if answer[0].endswith("\n") else answer[0] + "\n"
