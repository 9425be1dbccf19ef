"""Completion of names and attributes from a session's live namespace with jedi,
capped in time and size, on a small pool of its own threads, and jedi's warm-up
in the background when the first console attaches (no network I/O)."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from hotmesh._console.timers import Timers
from hotmesh._gil import short_gil_slices

_log = logging.getLogger("hotmesh.console")

Item = tuple[str, int, str]
Reply = Callable[[list[Item], str], None]
MAX_ITEMS = 200
# jedi's caches are process-wide and not thread-safe: one completion at a
# time in the whole process, whichever node or session asks.
_jedi_lock = threading.Lock()
_warm_lock = threading.Lock()
_warm_started = False
jedi_ready = threading.Event()
"""Set once jedi is loaded and has completed once in this process."""

# What the warm-up completes: a name, attributes of builtin types (jedi reads
# their stubs) and an import: the first Tab of a session then finds it all loaded.
_WARM_UP: tuple[tuple[str, int], ...] = (
    ("warm_up_value", 6),
    ("warm_up_value.bit_l", 19),
    ("[].app", 6),
    ("import o", 8),
)


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
    jedi = _load_jedi()
    with _jedi_lock:
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


def warm_up() -> None:
    """Load jedi and complete once, on a background thread, once per process.

    Called when a console attaches, so its first Tab finds jedi loaded (the
    load is 0.2-0.5 s of CPU). The thread steps aside as it goes: it sleeps a
    moment before each module it imports and between its completions, and runs
    with short GIL slices, so the node's service threads get the GIL within
    0.5 ms when they ask. What it cannot cut: parso's unpickling of a cached
    stub parse tree, one C call (up to 20 ms measured, for builtins). It cannot
    be stopped half-way (an import), and it ends by itself.
    """
    global _warm_started
    with _warm_lock:
        if _warm_started or jedi_ready.is_set():
            return
        _warm_started = True
    threading.Thread(target=_warm, name="console-jedi-warmup", daemon=True).start()


def _warm() -> None:
    pauses = _PauseBeforeImports(threading.get_ident())
    sys.meta_path.insert(0, pauses)
    try:
        with short_gil_slices():
            for code, pos in _WARM_UP:
                complete({"warm_up_value": 0}, code, pos)
                time.sleep(_PAUSE * 10)
    except Exception as exc:  # the first real completion will say what is wrong
        _log.debug("jedi warm-up failed: %s: %s", type(exc).__name__, exc)
    finally:
        sys.meta_path.remove(pauses)


_PAUSE = 0.002  # seconds the warm-up steps aside before each module it imports


class _PauseBeforeImports:
    """A meta path entry that finds nothing: in the warm-up thread, it sleeps
    ``_PAUSE`` before each import (jedi and parso are about 150 modules)."""

    def __init__(self, ident: int) -> None:
        self._ident = ident

    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if threading.get_ident() == self._ident:
            time.sleep(_PAUSE)
        return None


class CompletionService:
    """Runs completions off the caller's thread and answers each exactly once.

    jedi is loaded by ``warm_up()`` when the first console attaches, or else
    by the first request (see ``_load_jedi`` for how it stays off the GIL).

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

    def warm_up(self) -> None:
        """Load jedi in the background now, once per process (see ``warm_up``)."""
        warm_up()

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
