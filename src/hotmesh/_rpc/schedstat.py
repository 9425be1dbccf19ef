"""What a thread had of the machine: the kernel's per-thread scheduler accounting (reads /proc).

The worker pool's watchdog asks this of the threads running jobs, to tell a job
that is slow (computing, or blocked in I/O, a sleep or a lock) from one whose
thread only waited for a core.
"""

from __future__ import annotations

import os
import threading


class ThreadTimes:
    """What the kernel counts for each thread of this process (Linux's ``/proc``).

    A thread is named by its native id. Each read opens its file (~2 us): a
    thread may end and its id be reused, and nothing has to be closed.
    """

    def times(self, native_id: int) -> tuple[int, int] | None:
        """Its (time on a core, time runnable on a run queue), ns since it
        started, from ``schedstat``; None when they cannot be read.

        Both lag: a wait on a run queue is counted when it ends, time on a core
        at the scheduler's next tick.
        """
        fields = _read(f"/proc/self/task/{native_id}/schedstat").split()
        if len(fields) < 2:
            return None
        return int(fields[0]), int(fields[1])

    def wants_core(self, native_id: int) -> bool:
        """Whether it is on a core or waiting for one now (state ``R`` in its ``stat``)."""
        state = _read(f"/proc/self/task/{native_id}/stat").rpartition(b")")[2].split()[:1]
        return state == [b"R"]


def _read(path: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return b""
    try:
        return os.read(fd, 1024)
    except OSError:
        return b""
    finally:
        os.close(fd)


def default_reader() -> ThreadTimes | None:
    """A ``ThreadTimes`` where this process can read its threads' ``schedstat``, else None."""
    reader = ThreadTimes()
    return reader if reader.times(threading.get_native_id()) is not None else None


def own_time(interval: int, on_cpu: int, runnable: int, watchdog_asleep: int) -> int:
    """Nanoseconds of ``interval`` that a job's thread surely had to itself.

    The time it spent on a core (``on_cpu``), plus the part of its sleep off any
    run queue (blocked in I/O, a sleep, a lock: what makes a job slow) that
    overlapped the watchdog's own sleep (``watchdog_asleep`` of the interval;
    the overlap is at least their sum less the interval). The rest of the
    interval the watchdog was waking, waiting for a core or the GIL, or looking:
    a thread of this process that waited for a core then, or held the GIL or
    the pool's lock, may be what the job slept on, and another leader would
    have waited as long. Time ``runnable`` on a run queue is the machine's
    doing, never the job's.
    """
    asleep = max(0, interval - on_cpu - runnable)
    return on_cpu + max(0, asleep + watchdog_asleep - interval)
