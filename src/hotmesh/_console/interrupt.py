"""Interrupting one thread of this process: asynchronous exceptions and an
interruptible ``time.sleep`` for console session threads (no I/O)."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any


@functools.cache
def _async_exc() -> tuple[Any, Any]:
    """``(set, clear)``: PyThreadState_SetAsyncExc with an exception, and with NULL.

    Made at the first interrupt: ctypes is not loaded by every node's start.
    """
    import ctypes

    set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
    set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)
    set_async_exc.restype = ctypes.c_int
    # The same C function with a NULL exception clears a pending one; it needs
    # its own prototype because py_object cannot carry NULL.
    clear_async_exc = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(
        ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
    )
    return set_async_exc, clear_async_exc


def raise_in_thread(ident: int, exc_type: type[BaseException] = KeyboardInterrupt) -> bool:
    """Make thread ``ident`` raise ``exc_type`` at its next bytecode.

    A thread blocked inside a C call (a lock wait, a socket read, a plain
    ``time.sleep`` not routed through ``SleepGate``) raises only when that call
    returns. Returns False when no such thread exists.
    """
    changed: int = _async_exc()[0](ident, exc_type)
    return changed == 1


def clear_pending(ident: int) -> None:
    """Drop an asynchronous exception not yet raised in thread ``ident``."""
    _async_exc()[1](ident, None)


class SessionInterrupt(KeyboardInterrupt):
    """The KeyboardInterrupt a console interrupt raises in a session thread.

    Creating it (which CPython does when a handler receives it) marks the
    pending request as consumed, so a later sleep does not raise it again.
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        sleep_gate.consumed(threading.get_ident())


class _ThreadState:
    __slots__ = ("event", "requested", "sleeping")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.requested = False
        self.sleeping = False


class SleepGate:
    """Interrupts registered threads, including while they are in ``time.sleep``.

    While installed, ``time.sleep`` on a registered thread waits on an event
    instead of sleeping in C, so an interrupt ends it at once; on every other
    thread it is the original sleep plus one dict lookup. Code holding a
    reference to the original (``from time import sleep`` before the console
    started) keeps the uninterruptible one. One interrupt request raises one
    KeyboardInterrupt: either asynchronously at the next bytecode, or from the
    sleep it is waiting in.
    """

    def __init__(self) -> None:
        self._threads: dict[int, _ThreadState] = {}
        self._original: Callable[[float], None] | None = None
        self._count = 0
        self._lock = threading.Lock()

    def install(self) -> None:
        """Replace ``time.sleep`` (counted: undone by as many ``uninstall`` calls)."""
        with self._lock:
            self._count += 1
            if self._count == 1:
                self._original = time.sleep
                time.sleep = self._sleep  # type: ignore[assignment]  # takes what it forwards

    def uninstall(self) -> None:
        """Put the original ``time.sleep`` back, unless another wrapper replaced ours."""
        with self._lock:
            self._count -= 1
            if self._count == 0 and self._original is not None:
                if time.sleep == self._sleep:
                    time.sleep = self._original  # type: ignore[assignment]  # it was time.sleep
                self._original = None

    def register(self, ident: int) -> None:
        """Make thread ``ident`` interruptible (a console session worker)."""
        with self._lock:
            self._threads[ident] = _ThreadState()

    def unregister(self, ident: int) -> None:
        with self._lock:
            self._threads.pop(ident, None)

    def interrupt(self, ident: int) -> bool:
        """Raise KeyboardInterrupt in registered thread ``ident``; False if not registered."""
        with self._lock:
            state = self._threads.get(ident)
            if state is None:
                return False
            state.requested = True
            if state.sleeping:
                state.event.set()
                return True
        return raise_in_thread(ident, SessionInterrupt)

    def cancel(self, ident: int) -> None:
        """Withdraw an interrupt not yet raised (the statement ended first)."""
        with self._lock:
            state = self._threads.get(ident)
            if state is not None:
                state.requested = False
            clear_pending(ident)

    def consumed(self, ident: int) -> None:
        with self._lock:
            state = self._threads.get(ident)
            if state is not None:
                state.requested = False

    def _sleep(self, seconds: float) -> None:
        ident = threading.get_ident()
        state = self._threads.get(ident)
        if state is None:
            (self._original or _real_sleep)(seconds)
            return
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        with self._lock:
            if not state.requested:
                state.sleeping = True
                state.event.clear()
        if state.sleeping:
            state.event.wait(seconds)
        with self._lock:
            state.sleeping = False
            if not state.requested:
                return
            state.requested = False
            clear_pending(ident)
        raise SessionInterrupt


_real_sleep = time.sleep
sleep_gate = SleepGate()
