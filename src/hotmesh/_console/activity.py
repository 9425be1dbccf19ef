"""What runs in this process, for the console's ``ps()`` and ``where(t)``: its
threads and asyncio tasks, the function each is in and the version of that
function's module (reads frames; no I/O)."""

from __future__ import annotations

import io
import sys
import sysconfig
import threading
import traceback
import types
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

_STDLIB = tuple(
    path for path in {sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib")} if path
)


@dataclass(frozen=True)
class Activity:
    """One thread or task: ``id`` (thread ident or task id), its ``name``, the
    function it is in (``module.qualname``), that module's ``version``
    (``3fa9c1d2-1`` for a module under the code server, ``old 3fa9c1d2-1``
    when the function belongs to the module's old version, ``-`` otherwise)
    and the line (``file:line``)."""

    kind: str
    id: int
    name: str
    function: str
    version: str
    line: str


class Activities(list[Activity]):
    """The rows of ``ps()``; shown as a table in the console."""

    def __repr__(self) -> str:
        rows = [("KIND", "ID", "NAME", "FUNCTION", "VERSION", "AT")]
        rows += [(a.kind, str(a.id), a.name, a.function, a.version, a.line) for a in self]
        widths = [min(40, max(len(row[i]) for row in rows)) for i in range(5)]
        lines = [
            "  ".join(c[:w].ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5]
            for r in rows
        ]
        return "\n".join(line.rstrip() for line in lines)


class Stack(str):
    """A stack's text; shown as is in the console (not as a quoted string)."""

    def __repr__(self) -> str:
        return str(self).rstrip("\n")


def activities() -> Activities:
    """Every thread of this process, then every pending asyncio task."""
    frames = sys._current_frames()
    rows = Activities()
    for thread in threading.enumerate():
        frame = frames.get(thread.ident or 0)
        if frame is not None:
            rows.append(_row("thread", thread.ident or 0, thread.name, _innermost(frame)))
    for task in _tasks():
        stack = task.get_stack()
        if stack:
            rows.append(_row("task", id(task), task.get_name(), _pick(stack[::-1])))
    return rows


def stack_of(target: Any) -> Stack:
    """The stack of a thread or task: a ``ps()`` row, an id, a name, a Thread or a Task.

    Raises:
        LookupError: no such thread or task (any more).
    """
    if isinstance(target, Activity):
        target = target.id if target.kind == "thread" else _task_by_id(target.id)
    if isinstance(target, threading.Thread):
        target = target.ident
    aio = sys.modules.get("asyncio")  # not imported: no task to look at
    if aio is not None and isinstance(target, aio.Task):
        out = io.StringIO()
        target.print_stack(file=out)
        return Stack(out.getvalue())
    if isinstance(target, str):
        named = [t.ident for t in threading.enumerate() if t.name == target]
        tasks = [t for t in _tasks() if t.get_name() == target]
        if named:
            target = named[0]
        elif tasks:
            return stack_of(tasks[0])
    frame = sys._current_frames().get(target) if isinstance(target, int) else None
    if frame is None and isinstance(target, int):
        task = _task_by_id(target)
        if task is not None:
            return stack_of(task)
    if frame is None:
        raise LookupError(f"no thread or task {target!r} in this process (see ps())")
    return Stack("".join(traceback.format_stack(frame)))


def _tasks() -> list[asyncio.Task[Any]]:
    # Tasks of every event loop in the process (asyncio keeps them all in one
    # weak set); all_tasks() would only see the loop of the calling thread.
    # A process that never imported asyncio has no task (and is spared its
    # import: asyncio pulls in ssl, 8 MB of a node's memory).
    aio = sys.modules.get("asyncio")
    registry = getattr(aio.tasks, "_all_tasks", ()) if aio is not None else ()
    return [task for task in list(registry) if not task.done()]


def _task_by_id(ident: int) -> asyncio.Task[Any] | None:
    return next((task for task in _tasks() if id(task) == ident), None)


def _innermost(frame: types.FrameType) -> types.FrameType:
    chain: list[types.FrameType] = []
    current: types.FrameType | None = frame
    while current is not None:
        chain.append(current)
        current = current.f_back
    return _pick(chain)


def _pick(chain: list[types.FrameType]) -> types.FrameType:
    """From the innermost frame out: the first in a managed module, else the
    first outside the standard library, else the innermost."""
    from hotmesh import code

    for frame in chain:
        if code.is_managed(str(frame.f_globals.get("__name__", ""))):
            return frame
    for frame in chain:
        if not frame.f_code.co_filename.startswith(_STDLIB):
            return frame
    return chain[0]


def _row(kind: str, ident: int, name: str, frame: types.FrameType) -> Activity:
    module = str(frame.f_globals.get("__name__", "?"))
    function = f"{module}.{frame.f_code.co_qualname}"
    line = f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno}"
    return Activity(kind, ident, name, function, _version(module, frame.f_globals), line)


def _version(module: str, namespace: dict[str, Any]) -> str:
    from hotmesh import code

    current = code.current_version(module)
    if current is not None and current.namespace is namespace:
        return current.vsn
    old = code.old_version(module)
    if old is not None and old.namespace is namespace:
        return f"old {old.vsn}"
    return current.vsn if current is not None else "-"
