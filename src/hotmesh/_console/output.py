"""Per-session output: the ordered, batching outbox of a session and the
``sys.stdout``/``sys.stderr``/``sys.stdin`` proxies that follow a ContextVar
(no I/O of their own; the outbox hands messages to a send callback)."""

from __future__ import annotations

import contextlib
import io
import itertools
import sys
import threading
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TextIO

from hotmesh._console import protocol
from hotmesh._console.timers import Timers

Send = Callable[[dict[str, Any]], None]


class Outbox:
    """Everything a session sends to its client, in order, with output batched.

    Output chunks of the same stream and statement are merged and sent after
    ``delay`` seconds or once ``max_bytes`` are pending, so a print loop sends
    a few messages per second, not one per line. Every message gets the next
    ``seq``; ``send`` flushes pending output first so a result never overtakes
    the output printed before it. Thread-safe: any thread may write.
    """

    def __init__(
        self,
        sid: str,
        send: Send,
        timers: Timers,
        *,
        delay: float = 0.005,
        max_bytes: int = 16384,
    ) -> None:
        self._sid = sid
        self._send = send
        self._timers = timers
        self._delay = delay
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._pending: list[str] = []
        self._pending_key: tuple[str, int] | None = None
        self._pending_size = 0
        self._scheduled = False
        self._closed = False
        self._at_close: list[Callable[[], None]] = []

    @property
    def is_closed(self) -> bool:
        return self._closed

    def on_close(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when the session ends (e.g. remove a log handler)."""
        with self._lock:
            self._at_close.append(callback)

    def close(self) -> None:
        """The session ended: drop pending and future output, run ``on_close`` callbacks."""
        with self._lock:
            self._closed = True
            self._pending.clear()
            self._pending_key = None
            callbacks, self._at_close = self._at_close, []
        for callback in callbacks:
            with contextlib.suppress(Exception):
                callback()

    def write(self, name: str, text: str, rid: int) -> None:
        """Queue ``text`` of stream ``name`` ('stdout' or 'stderr') for statement ``rid``."""
        if not text:
            return
        with self._lock:
            if self._pending_key not in (None, (name, rid)):
                self._flush_locked()
            self._pending_key = (name, rid)
            self._pending.append(text)
            self._pending_size += len(text)
            if self._pending_size >= self._max_bytes:
                self._flush_locked()
                return
            if not self._scheduled:
                self._scheduled = True
                self._timers.call_later(self._delay, self._timer_flush)

    def flush(self) -> None:
        """Send pending output now."""
        with self._lock:
            self._flush_locked()

    def send(self, message: dict[str, Any]) -> None:
        """Send ``message`` after any pending output; adds ``sid`` and ``seq``."""
        with self._lock:
            self._flush_locked()
            self._emit_locked(message)

    def _timer_flush(self) -> None:
        with self._lock:
            self._scheduled = False
            self._flush_locked()

    def _flush_locked(self) -> None:
        if not self._pending or self._pending_key is None:
            return
        name, rid = self._pending_key
        text = "".join(self._pending)
        self._pending.clear()
        self._pending_key = None
        self._pending_size = 0
        # One huge write is cut so that no message exceeds the wire's size limit.
        for start in range(0, len(text), self._max_bytes):
            piece = text[start : start + self._max_bytes]
            self._emit_locked(protocol.out(rid, name, piece))

    def _emit_locked(self, message: dict[str, Any]) -> None:
        if self._closed:
            return
        message["sid"] = self._sid
        message["seq"] = next(self._seq)
        # When the client is gone or the node is stopping, output has nowhere
        # to go, and the statement producing it must not fail because of that.
        with contextlib.suppress(Exception):
            self._send(message)


@dataclass(frozen=True)
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
            sys.stdout = RoutedStream("stdout", sys.stdout)  # type: ignore[assignment]
        if not isinstance(sys.stderr, RoutedStream):
            sys.stderr = RoutedStream("stderr", sys.stderr)  # type: ignore[assignment]
        if not isinstance(sys.stdin, RoutedInput):
            sys.stdin = RoutedInput(sys.stdin)  # type: ignore[assignment]


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
