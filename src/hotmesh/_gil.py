"""Shorter GIL slices while a long job runs beside a node's service threads (no I/O).

CPython hands the GIL to a waiting thread only every switch interval (5 ms by
default). A request to a node crosses two or three threads, and each hand-off
waits up to one interval while a busy thread (an upgrade, the console's first
jedi load) holds the GIL. ``short_gil_slices()`` makes the interval 0.5 ms while
any such job runs; the interval is process-wide, so the jobs share one count
and the last one out puts it back.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator

SLICE = 0.0005  # seconds; CPython's default switch interval is 0.005

_lock = threading.Lock()
_users = 0
_saved = 0.0


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
