"""Stopping what runs an old version: close generators, cancel tasks, interrupt threads, report.

Does no I/O; it waits (polling with a deadline) for threads and loops that run
on their own schedule.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from hotmesh._errors import CodePurged
from hotmesh.code import scan


@dataclass(frozen=True)
class PurgeReport:
    """What ``purge`` did (Erlang's purge only says whether it killed something).

    ``purged``: there was an old version and it is gone. ``cancelled`` and
    ``interrupted`` name the tasks cancelled and the threads that got
    CodePurged raised in them; ``closed`` the generators, coroutines and async
    generators of the old version that were suspended outside any task and
    were closed; ``lingering`` names those still running old code when the
    timeout expired (blocked in C, swallowing the exception, a task whose loop
    is closed, a generator whose closing failed).
    """

    module: str
    purged: bool
    cancelled: tuple[str, ...] = ()
    interrupted: tuple[str, ...] = ()
    lingering: tuple[str, ...] = ()
    closed: tuple[str, ...] = ()

    @property
    def killed(self) -> bool:
        """Whether anything was asked to stop (Erlang's return value of purge)."""
        return bool(self.cancelled or self.interrupted or self.closed)


def stop_runners(module: str, namespace: dict[str, Any], timeout: float) -> PurgeReport:
    """Stop every thread, task and generator running ``namespace``'s code, wait, and report.

    Suspended generators are closed at once; tasks are cancelled in their own
    loop's thread; threads get CodePurged. Waits up to ``timeout`` seconds,
    except for this thread and tasks of this thread's own loop, which cannot
    finish while the caller blocks.
    """
    cancelled: list[str] = []
    interrupted: list[str] = []
    closed: list[str] = []
    lingering: list[str] = []
    done = {"task": cancelled, "thread": interrupted, "generator": closed}
    for offender in scan.find_offenders(namespace):
        if not scan.interrupt(offender, CodePurged):
            lingering.append(offender.description)
        else:
            done[offender.kind].append(offender.description)
    deadline = time.monotonic() + timeout
    remaining = _waitable(namespace)
    while remaining and time.monotonic() < deadline:
        time.sleep(0.002)  # poll: threads and loops finish on their own schedule
        remaining = _waitable(namespace)
    lingering += [o.description for o in remaining if o.description not in lingering]
    return PurgeReport(
        module,
        True,
        cancelled=tuple(cancelled),
        interrupted=tuple(interrupted),
        lingering=tuple(lingering),
        closed=tuple(closed),
    )


def _waitable(namespace: dict[str, Any]) -> list[scan.Offender]:
    """Offenders that can still finish: not this thread, nor a task of this thread's loop."""
    me = threading.get_ident()
    result = []
    # Generators were closed (or failed to close) synchronously: nothing to wait for.
    for offender in scan.find_offenders(namespace, generators=False):
        if offender.kind == "thread" and offender.target == me:
            continue
        if offender.kind == "task":
            loop = offender.target.get_loop()
            if getattr(loop, "_thread_id", None) == me or loop.is_closed():
                continue
        result.append(offender)
    return result
