"""Completion of names and attributes from a session's live namespace with jedi,
capped in time and size, on a small pool of its own threads (no network I/O)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from hotmesh._console.timers import Timers

_log = logging.getLogger("hotmesh.console")

Item = tuple[str, int, str]
Reply = Callable[[list[Item], str], None]
MAX_ITEMS = 200
# jedi's caches are process-wide and not thread-safe: one completion at a
# time in the whole process, whichever node or session asks.
_jedi_lock = threading.Lock()


def complete(namespace: dict[str, Any], code: str, pos: int) -> list[Item]:
    """Completions at offset ``pos`` of ``code`` against ``namespace``.

    Each item is ``(name, start, kind)``: the full name to put in place of the
    text from ``start`` (a non-positive offset from the cursor) up to the
    cursor, and jedi's kind ('function', 'module', 'instance', ...). jedi does
    not run properties or ``__getattr__`` while completing (unsafe interpreter
    executions are off), so completion never runs the application's code.
    """
    pos = max(0, min(pos, len(code)))
    line = code.count("\n", 0, pos) + 1
    column = pos - (code.rfind("\n", 0, pos) + 1)
    items: list[Item] = []
    with _jedi_lock:
        import jedi

        jedi.settings.allow_unsafe_interpreter_executions = False
        for c in jedi.Interpreter(code, [namespace]).complete(line, column):
            typed = len(c.name) - len(c.complete)
            items.append((c.name, -typed, c.type))
            if len(items) >= MAX_ITEMS:
                break
    return items


class CompletionService:
    """Runs completions off the caller's thread and answers each exactly once.

    jedi is loaded by the first request, not before: loading it unpickles
    parse caches in single C calls that hold the GIL for tens of milliseconds
    each (measured: opening a first session that warmed jedi stalled the
    node's service by 170-630 ms; without it, as much as a second session).

    The reply comes with status 'ok', 'error' or 'timeout'. A completion still
    running at the cap gets a 'timeout' reply at once; its late result is
    dropped. jedi is not thread-safe and cannot be stopped, so completions run
    one at a time on one thread: a stuck one makes the next ones time out
    until it ends, and never costs more than that thread.
    """

    def __init__(self, timers: Timers, *, timeout: float = 1.0, cold_timeout: float = 5.0) -> None:
        self._timers = timers
        self._timeout = timeout
        self._cold_timeout = cold_timeout
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="hotmesh-complete")
        self._ready = threading.Event()  # jedi imported and run once

    def request(self, namespace: dict[str, Any], code: str, pos: int, reply: Reply) -> None:
        """Complete ``code`` at ``pos``; ``reply(items, status)`` is called once."""
        once = threading.Lock()
        answered = [False]

        def answer(items: list[Item], status: str) -> None:
            with once:
                if answered[0]:
                    return
                answered[0] = True
            reply(items, status)

        def finished(future: Future[list[Item]]) -> None:
            if future.cancelled():
                answer([], "timeout")
            elif (exc := future.exception()) is not None:
                _log.warning("completion failed: %s: %s", type(exc).__name__, exc, exc_info=exc)
                answer([], "error")
            else:
                self._ready.set()
                answer(future.result(), "ok")

        future = self._pool.submit(complete, namespace, code, pos)
        future.add_done_callback(finished)
        cap = self._timeout if self._ready.is_set() else self._cold_timeout
        self._timers.call_later(cap, lambda: answer([], "timeout"))

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
