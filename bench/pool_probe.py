"""``python -m pool_probe ARGS``: ``python -m hotmesh ARGS``, its worker pools counted.

For bench/mesh.py (not shipped): every ``WorkerPool`` of the process counts the
threads it starts and the time some job of it is judged slow (leaders hand the
inbox on before each job then); the hook ``mesh_peer:meshed`` prints both after
its MESHED line. Patches only what every tree's pool has (``_start`` and the
``_eager`` flag), so a ``--before`` tree is counted the same way.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from hotmesh._rpc import workers

_lock = threading.Lock()
_threads = [0]
_eager_total = [0.0]
_eager_since: dict[int, float] = {}
_start = workers.WorkerPool._start


def counted_start(self: Any, entry: Any) -> None:
    if entry is not None:
        with _lock:
            _threads[0] += 1
    _start(self, entry)


def get_eager(self: Any) -> bool:
    return bool(self.__dict__.get("_probe_eager", False))


def set_eager(self: Any, value: bool) -> None:
    with _lock:
        if value and not get_eager(self):
            _eager_since[id(self)] = time.monotonic()
        elif get_eager(self) and not value:
            _eager_total[0] += time.monotonic() - _eager_since.pop(id(self))
        self.__dict__["_probe_eager"] = value


def figures() -> tuple[int, float]:
    """(threads the pools started, seconds some job was slow) so far."""
    with _lock:
        now = time.monotonic()
        return _threads[0], _eager_total[0] + sum(now - t for t in _eager_since.values())


workers.WorkerPool._start = counted_start  # type: ignore[method-assign]
workers.WorkerPool._eager = property(get_eager, set_eager)  # type: ignore[assignment]

if __name__ == "__main__":
    from hotmesh.cli import main

    raise SystemExit(main())
