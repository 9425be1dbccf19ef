"""A service's mailbox: ordinary messages and system messages, with selective receive (no I/O).

System messages (get_state, suspend, code change, stop) jump the queue and are taken
even while the service is suspended; ordinary messages wait while it is suspended,
like Erlang's ``sys:suspend``.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Call:
    """A request that wants a reply (``handle_call``)."""

    msg: Any
    future: Future[Any] = field(default_factory=Future)


@dataclass
class Cast:
    """A request without a reply (``handle_cast``)."""

    msg: Any


@dataclass
class Info:
    """A plain message (``handle_info``)."""

    msg: Any


@dataclass
class System:
    """A ``sys``-like request handled by the service loop itself, between messages."""

    op: str
    arg: Any = None
    future: Future[Any] = field(default_factory=Future)


Message = Call | Cast | Info


class Mailbox:
    """Thread-safe queue of one service's messages; many senders, one receiver."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._normal: deque[Message] = deque()
        self._system: deque[System] = deque()
        self._closed = False

    def put(self, message: Message) -> bool:
        """Queue an ordinary message (FIFO per sender, as in Erlang); False if closed."""
        with self._cond:
            if self._closed:
                return False
            self._normal.append(message)
            self._cond.notify()
            return True

    def put_system(self, message: System) -> bool:
        """Queue a system message ahead of every ordinary message; False if closed."""
        with self._cond:
            if self._closed:
                return False
            self._system.append(message)
            self._cond.notify()
            return True

    def take(self, *, normal: bool) -> Message | System:
        """Block until a message can be taken: system ones first, ordinary ones if ``normal``.

        Only the service's own thread takes, and only it changes whether it accepts
        ordinary messages (suspend/resume are system messages), so a flag suffices.
        """
        with self._cond:
            while True:
                if self._system:
                    return self._system.popleft()
                if normal and self._normal:
                    return self._normal.popleft()
                self._cond.wait()

    def close(self) -> list[Message | System]:
        """Refuse further messages; remove and return everything queued (service ended)."""
        with self._cond:
            self._closed = True
            items: list[Message | System] = [*self._system, *self._normal]
            self._system.clear()
            self._normal.clear()
            return items

    def __len__(self) -> int:
        return len(self._normal)
