"""Long jobs beside a node's service threads (no I/O but a lock file): shorter GIL
slices, and a turn per machine.

CPython hands the GIL to a waiting thread only every switch interval (5 ms by
default). A request to a node crosses two or three threads, and each hand-off
waits up to one interval while a busy thread (an upgrade, the console's first
jedi load) holds the GIL. ``short_gil_slices()`` makes the interval 0.5 ms while
any such job runs; the interval is process-wide, so the jobs share one count
and the last one out puts it back.

Shorter slices do not help when the busy thread is not running: on a machine
with fewer cores than busy processes, the kernel preempts a busy thread while
it holds its process's GIL, and every request to that process then waits until
the thread is scheduled again. ``machine_turn()`` lets the nodes of one machine
take turns for such a job (an upgrade, which all nodes of a rollout run at the
same moment), through lock files under the state directory, so that the other
cores stay free for the threads that serve clients. A turn is never a deadlock:
a job that waited ``TURN_WAIT`` seconds runs without one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

SLICE = 0.0005  # seconds; CPython's default switch interval is 0.005
TURN_SLOTS = max(1, (os.cpu_count() or 1) // 2)  # jobs running at once per machine
TURN_WAIT = 2.0  # seconds; past this a job goes ahead without a turn

_lock = threading.Lock()
_users = 0
_saved = 0.0
_turn_lock = threading.Lock()
_turn_held = 0  # jobs of this process inside a turn (a nested job takes none)


@contextlib.contextmanager
def short_gil_slices() -> Iterator[None]:
    """Hand the GIL over every ``SLICE`` seconds (at most) inside the block."""
    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_saved, SLICE))
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                sys.setswitchinterval(_saved)


@contextlib.contextmanager
def machine_turn(directory: Path, kind: str, *, wait: float = TURN_WAIT) -> Iterator[bool]:
    """Run the block in one of ``TURN_SLOTS`` turns of ``kind`` shared through ``directory``.

    The processes sharing turns are those given the same directory (the
    user's state directory, for nodes). Waits for a free turn (the kernel wakes
    the waiter when one is let go), at most ``wait`` seconds; yields True
    inside a turn, False when the block runs without one (waited too long, or
    the lock files cannot be made). A job nested in another of the same
    process runs in that turn.
    """
    global _turn_held
    with _turn_lock:
        nested = _turn_held > 0
        _turn_held += 1
    fd = None if nested else _take(directory, kind, wait)
    try:
        yield nested or fd is not None
    finally:
        if fd is not None:
            os.close(fd)  # lets the turn go
        with _turn_lock:
            _turn_held -= 1


def _take(directory: Path, kind: str, wait: float) -> int | None:
    """A descriptor holding a turn's lock, or None."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        paths = [directory / f"{kind}-{i}.lock" for i in range(TURN_SLOTS)]
        for path in paths:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                os.close(fd)
        fd = os.open(paths[os.getpid() % len(paths)], os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    return _Waiter(fd).take(wait)


class _Waiter:
    """A blocking ``flock`` on a thread of its own, so that the wait has a deadline.

    Whoever comes second (the caller giving up, or the lock being granted after
    that) closes the descriptor.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.granted = False
        self.gave_up = False

    def take(self, wait: float) -> int | None:
        threading.Thread(target=self._block, name="hotmesh-turn", daemon=True).start()
        self.done.wait(wait)
        with self.lock:
            if self.granted:
                return self.fd
            self.gave_up = True
            if self.done.is_set():  # flock failed: nobody else closes it
                os.close(self.fd)
        return None

    def _block(self) -> None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            granted = True
        except OSError:
            granted = False
        with self.lock:
            if self.gave_up:
                os.close(self.fd)  # lets the turn go, or just the descriptor
                return
            self.granted = granted
            self.done.set()
