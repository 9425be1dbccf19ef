"""Per-session output: the ordered, batching, flow-controlled outbox of a
session (no I/O of its own: it hands messages to a send callback). The
``sys.stdout``/``stderr``/``stdin`` proxies that write to it are in
``hotmesh._console.routing``."""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Callable
from typing import Any

from hotmesh._console import protocol
from hotmesh._console.timers import Timers

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
