"""The ``sys.stdout``/``sys.stderr``/``sys.stdin`` proxies that follow a ContextVar:
a console session's output goes to its outbox, everyone else's to the process's
own streams (no I/O of their own). Installed by every node as it starts."""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TextIO

from hotmesh._record import record

if TYPE_CHECKING:
    from hotmesh._console.output import Outbox


@record(frozen=True)
class Route:
    """Where the output and ``input()`` of the running code go."""

    outbox: Outbox
    rid: int
    read_line: Callable[[], str]


current_route: ContextVar[Route | None] = ContextVar("hotmesh_console_route", default=None)


class _Routed:
    """What the three stand-ins share: a session's stream is no terminal and has
    no file descriptor (``input()`` checks ``fileno()`` to pick its terminal
    path; session code must take the plain readline path instead)."""

    _fallback: TextIO | None
    _what = "stream"

    def isatty(self) -> bool:
        return (
            current_route.get() is None and self._fallback is not None and self._fallback.isatty()
        )

    def fileno(self) -> int:
        if current_route.get() is not None or self._fallback is None:
            raise io.UnsupportedOperation(
                f"a console session's {self._what} has no file descriptor"
            )
        return self._fallback.fileno()


class RoutedStream(_Routed):
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

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fallback, name)


class RoutedInput(_Routed):
    """``sys.stdin`` stand-in: asks the session's client when a route is set."""

    _what = "stdin"

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
