"""Per-session output: the ordered, batching outbox of a session and the
``sys.stdout``/``sys.stderr``/``sys.stdin`` proxies that follow a ContextVar
(no I/O of their own; the outbox hands messages to a send callback)."""

from __future__ import annotations

import collections
import contextlib
import io
import sys
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TextIO

from hotmesh._console import protocol
from hotmesh._console.timers import Timers
from hotmesh._record import record

Send = Callable[[dict[str, Any]], None]


class Outbox:
    """Everything a session sends to its client, in order, with output batched
    and flow-controlled.

    Output chunks are merged and sent after ``delay`` seconds or once
    ``max_bytes`` are pending, so a print loop sends a few messages per
    second, not one per line. Every message gets the next ``seq``; ``send``
    flushes pending output first so a result never overtakes the output
    printed before it. Thread-safe: any thread may write.

    Flow control: at most ``window`` messages are sent and not yet acknowledged
    by the client (``acked``). A writer thread registered with
    ``add_writer_thread`` (the session's worker, threads started with
    ``spawn()``) then waits for the client, so a statement printing faster than
    the client reads is slowed down and memory stays bounded; an interrupt
    still reaches it while it waits. Other threads (a logging handler in a
    service thread) never wait: their output queues up to ``overflow`` characters,
    beyond which it is dropped and counted, and the client is told. With
    ``window=None`` (a client that does not acknowledge) or once ``detach``
    is called (the client's lease expired), nothing waits and messages go out
    best effort, as they would to a client that is gone.
    """

    def __init__(
        self,
        sid: str,
        send: Send,
        timers: Timers,
        *,
        delay: float = 0.005,
        max_bytes: int = 16384,
        window: int | None = None,
        overflow: int = 4 * 1024 * 1024,
    ) -> None:
        self._sid = sid
        self._send = send
        self._timers = timers
        self._delay = delay
        self._max_bytes = max_bytes
        self._window = window
        self._overflow = overflow
        self._cond = threading.Condition(threading.Lock())
        self._seq = 0
        self._acked = 0
        self._pending: collections.deque[tuple[str, int, str]] = collections.deque()
        self._pending_size = 0
        self._dropped = 0
        self._writers: set[int] = set()
        self._detached = False
        self._scheduled = False
        self._closed = False
        self._at_close: list[Callable[[], None]] = []

    @property
    def is_closed(self) -> bool:
        return self._closed

    @property
    def in_flight(self) -> int:
        """Messages sent and not yet acknowledged."""
        return self._seq - self._acked

    def on_close(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when the session ends (e.g. remove a log handler)."""
        with self._cond:
            self._at_close.append(callback)

    def close(self) -> None:
        """The session ended: drop pending and future output, run ``on_close`` callbacks."""
        with self._cond:
            self._closed = True
            self._pending.clear()
            self._pending_size = 0
            callbacks, self._at_close = self._at_close, []
            self._cond.notify_all()
        for callback in callbacks:
            with contextlib.suppress(Exception):
                callback()

    def add_writer_thread(self, ident: int | None = None) -> None:
        """Let thread ``ident`` (default: this one) wait for the client when it is behind."""
        with self._cond:
            self._writers.add(ident if ident is not None else threading.get_ident())

    def remove_writer_thread(self, ident: int | None = None) -> None:
        with self._cond:
            self._writers.discard(ident if ident is not None else threading.get_ident())

    def acked(self, seq: int) -> None:
        """The client has handled every message up to ``seq``."""
        with self._cond:
            if seq <= self._acked:
                return
            self._acked = min(seq, self._seq)
            self._cond.notify_all()
            if self._pending and not self._scheduled:
                # Flushed on the timer thread: the caller is the node's I/O thread.
                self._scheduled = True
                self._timers.call_later(0, self._timer_flush)

    def detach(self) -> None:
        """The client went quiet: nothing waits for it any more."""
        with self._cond:
            self._detached = True
            self._cond.notify_all()
        self.flush()

    def reattach(self) -> None:
        """The client spoke again: flow control resumes."""
        with self._cond:
            self._detached = False

    def write(self, name: str, text: str, rid: int) -> None:
        """Queue ``text`` of stream ``name`` ('stdout' or 'stderr') for statement ``rid``.

        Waits while the client is behind when called from a writer thread.
        """
        if not text:
            return
        with self._cond:
            if self._closed:
                return
            may_wait = threading.get_ident() in self._writers
            if not may_wait and self._pending_size + len(text) > self._overflow:
                self._dropped += len(text)
                return
            self._pending.append((name, rid, text))
            self._pending_size += len(text)
            if self._pending_size >= self._max_bytes:
                self._flush_locked(wait=may_wait, whole=False)
            if self._pending and not self._scheduled:
                self._scheduled = True
                self._timers.call_later(self._delay, self._timer_flush)

    def flush(self) -> None:
        """Send pending output now, as far as the window allows (never waits)."""
        with self._cond:
            self._flush_locked(wait=False, whole=True)

    def send(self, message: dict[str, Any]) -> None:
        """Send ``message`` after any pending output; adds ``sid`` and ``seq``.

        Waits for the window like ``write`` (a writer thread) so that it keeps
        its place after the output before it.
        """
        with self._cond:
            may_wait = threading.get_ident() in self._writers
            self._flush_locked(wait=may_wait, whole=True)
            if may_wait:
                self._wait_for_room_locked()
            self._emit_locked(message)

    def _timer_flush(self) -> None:
        with self._cond:
            self._scheduled = False
            self._flush_locked(wait=False, whole=True)
            if self._pending and not self._window_full() and not self._closed:
                self._scheduled = True
                self._timers.call_later(self._delay, self._timer_flush)

    def _window_full(self) -> bool:
        return (
            self._window is not None
            and not self._detached
            and self._seq - self._acked >= self._window
        )

    def _wait_for_room_locked(self) -> None:
        while self._window_full() and not self._closed:
            # A short timeout: an interrupt (an asynchronous exception) is
            # raised only when this thread runs Python code again.
            self._cond.wait(0.1)

    def _flush_locked(self, *, wait: bool, whole: bool) -> None:
        """Emit pending output in messages of at most ``max_bytes`` characters.

        ``whole``: everything pending; else only full messages (a partial one
        waits for more text or the timer). ``wait``: wait for room in the
        window; else stop when it is full.
        """
        if self._dropped and not self._window_full():
            dropped, self._dropped = self._dropped, 0
            note = f"\n[{dropped} characters of output dropped: the console fell behind]\n"
            self._emit_locked(protocol.out(0, "stderr", note))
        while self._pending and (whole or self._pending_size >= self._max_bytes):
            if self._window_full():
                if not wait:
                    return
                self._wait_for_room_locked()
                if self._closed or not self._pending:
                    return
            name, rid, text = self._take_locked()
            self._emit_locked(protocol.out(rid, name, text))

    def _take_locked(self) -> tuple[str, int, str]:
        """Up to ``max_bytes`` characters of pending output of one stream and statement."""
        name, rid, _ = self._pending[0]
        parts: list[str] = []
        size = 0
        while self._pending and size < self._max_bytes:
            key_name, key_rid, text = self._pending[0]
            if (key_name, key_rid) != (name, rid):
                break
            room = self._max_bytes - size
            if len(text) > room:
                # One huge write is cut so that no message exceeds the wire's size limit.
                self._pending[0] = (name, rid, text[room:])
                text = text[:room]
            else:
                self._pending.popleft()
            parts.append(text)
            size += len(text)
        self._pending_size -= size
        return name, rid, "".join(parts)

    def _emit_locked(self, message: dict[str, Any]) -> None:
        if self._closed:
            return
        self._seq += 1
        message["sid"] = self._sid
        message["seq"] = self._seq
        # When the client is gone or the node is stopping, output has nowhere
        # to go, and the statement producing it must not fail because of that.
        with contextlib.suppress(Exception):
            self._send(message)


@record(frozen=True)
class Route:
    """Where the output and ``input()`` of the running code go."""

    outbox: Outbox
    rid: int
    read_line: Callable[[], str]


current_route: ContextVar[Route | None] = ContextVar("hotmesh_console_route", default=None)


class RoutedStream:
    """``sys.stdout``/``sys.stderr`` stand-in: session output when a route is
    set in the current context, the process's own stream otherwise."""

    def __init__(self, name: str, fallback: TextIO | None) -> None:
        self._name = name
        self._fallback = fallback

    def write(self, text: str) -> int:
        route = current_route.get()
        if route is None:
            # A process without a stdout (pythonw, a closed descriptor) has None
            # here; print() to None is silently skipped, and so is this.
            return len(text) if self._fallback is None else self._fallback.write(text)
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        route.outbox.write(self._name, text, route.rid)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        route = current_route.get()
        if route is not None:
            route.outbox.flush()
        elif self._fallback is not None:
            self._fallback.flush()

    def isatty(self) -> bool:
        return (
            current_route.get() is None and self._fallback is not None and self._fallback.isatty()
        )

    def fileno(self) -> int:
        if current_route.get() is not None or self._fallback is None:
            # input() checks fileno() to pick its terminal path; session code
            # must take the plain readline path instead.
            raise io.UnsupportedOperation("a console session's stream has no file descriptor")
        return self._fallback.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fallback, name)


class RoutedInput:
    """``sys.stdin`` stand-in: asks the session's client when a route is set."""

    def __init__(self, fallback: TextIO | None) -> None:
        self._fallback = fallback

    def readline(self, size: int = -1) -> str:
        route = current_route.get()
        if route is None:
            return "" if self._fallback is None else self._fallback.readline(size)
        return route.read_line()

    def read(self, size: int = -1) -> str:
        route = current_route.get()
        if route is None:
            return "" if self._fallback is None else self._fallback.read(size)
        return route.read_line()

    def isatty(self) -> bool:
        return (
            current_route.get() is None and self._fallback is not None and self._fallback.isatty()
        )

    def fileno(self) -> int:
        if current_route.get() is not None or self._fallback is None:
            raise io.UnsupportedOperation("a console session's stdin has no file descriptor")
        return self._fallback.fileno()

    def close(self) -> None:
        # site's exit() closes sys.stdin before raising SystemExit: a session
        # must not close the process's stdin.
        if current_route.get() is None and self._fallback is not None:
            self._fallback.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fallback, name)


_install_lock = threading.Lock()
_install_count = 0


def install() -> None:
    """Put the routing proxies in ``sys`` (counted: one per running console server)."""
    global _install_count
    with _install_lock:
        _install_count += 1
    ensure_installed()


def ensure_installed() -> None:
    """Wrap ``sys.stdout``/``stderr``/``stdin`` again if something replaced our proxies.

    Called before every statement: an application (or a test runner) that
    swaps ``sys.stdout`` after the console started gets wrapped in turn, so
    session output stays routed and its own output still reaches its stream.
    """
    with _install_lock:
        if _install_count <= 0:
            return
        if not isinstance(sys.stdout, RoutedStream):
            sys.stdout = RoutedStream("stdout", sys.stdout)
        if not isinstance(sys.stderr, RoutedStream):
            sys.stderr = RoutedStream("stderr", sys.stderr)
        if not isinstance(sys.stdin, RoutedInput):
            sys.stdin = RoutedInput(sys.stdin)


def uninstall() -> None:
    """Undo ``install`` once the last server stops (our proxies only, outermost first)."""
    global _install_count
    with _install_lock:
        _install_count -= 1
        if _install_count > 0:
            return
        for name in ("stdout", "stderr", "stdin"):
            stream = getattr(sys, name)
            while isinstance(stream, RoutedStream | RoutedInput):
                stream = stream._fallback
            setattr(sys, name, stream)
