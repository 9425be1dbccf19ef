"""Completion at the cursor from a session's live namespace: dotted names by
static lookup (``static_completion``, instant, no jedi), everything else with
jedi, loaded on the first completion that needs it, gently. Capped in time and
size, on a thread of its own (no network I/O)."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from hotmesh._console.static_completion import complete_static
from hotmesh._console.timers import Timers
from hotmesh._gil import short_gil_slices

_log = logging.getLogger("hotmesh.console")

Item = tuple[str, int, str]
Reply = Callable[[list[Item], str], None]
MAX_ITEMS = 200
# jedi's caches are process-wide and not thread-safe: one completion at a
# time in the whole process, whichever node or session asks.
_jedi_lock = threading.Lock()
jedi_ready = threading.Event()
"""Set once jedi is loaded and has completed once in this process."""


def complete(namespace: dict[str, Any], code: str, pos: int) -> list[Item]:
    """Completions at offset ``pos`` of ``code`` against ``namespace``.

    Each item is ``(name, start, kind)``: the full name to put in place of the
    text from ``start`` (a non-positive offset from the cursor) up to the
    cursor, and its kind ('function', 'module', 'class', 'instance', ...).
    Completion never runs the application's code: a dotted name is looked up
    statically, and jedi does not run properties or ``__getattr__`` (unsafe
    interpreter executions are off).
    """
    pos = max(0, min(pos, len(code)))
    quick = complete_static(namespace, code, pos)
    if quick is not None:
        return quick[:MAX_ITEMS]
    line = code.count("\n", 0, pos) + 1
    column = pos - (code.rfind("\n", 0, pos) + 1)
    items: list[Item] = []
    with _jedi_lock:
        with contextlib.ExitStack() as gently:
            if not jedi_ready.is_set():
                gently.enter_context(_loading_gently())
            jedi = _load_jedi()
            for c in jedi.Interpreter(code, [namespace]).complete(line, column):
                typed = len(c.name) - len(c.complete)
                items.append((c.name, -typed, c.type))
                if len(items) >= MAX_ITEMS:
                    break
        jedi_ready.set()
    return items


def _load_jedi() -> Any:
    """Import jedi and turn off its unsafe executions (it then never runs app code)."""
    import jedi

    jedi.settings.allow_unsafe_interpreter_executions = False
    return jedi


@contextlib.contextmanager
def _loading_gently() -> Iterator[None]:
    """jedi's first load (0.2-0.5 s of CPU, about 150 modules) steps aside as it
    goes: a pause before each module it imports, and short GIL slices, so the
    node's service threads get the GIL within 0.5 ms when they ask. What it
    cannot cut: parso's unpickling of a cached stub parse tree, one C call (up
    to 20 ms measured, for builtins)."""
    pauses = _PauseBeforeImports(threading.get_ident())
    sys.meta_path.insert(0, pauses)
    try:
        with short_gil_slices():
            yield
    finally:
        sys.meta_path.remove(pauses)


_PAUSE = 0.002  # seconds jedi's first load steps aside before each module it imports


class _PauseBeforeImports:
    """A meta path entry that finds nothing: in the loading thread, it sleeps
    ``_PAUSE`` before each import (jedi and parso are about 150 modules)."""

    def __init__(self, ident: int) -> None:
        self._ident = ident

    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if threading.get_ident() == self._ident:
            time.sleep(_PAUSE)
        return None


class CompletionService:
    """Runs completions off the caller's thread and answers each exactly once.

    Dotted names are answered at once without jedi; jedi is loaded by the
    first request that needs it (see ``_loading_gently``).

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
                answer(future.result(), "ok")

        future = self._pool.submit(complete, namespace, code, pos)
        future.add_done_callback(finished)
        cap = self._timeout if jedi_ready.is_set() else self._cold_timeout
        self._timers.call_later(cap, lambda: answer([], "timeout"))

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
