"""Finding and interrupting the threads and asyncio tasks that run a version's code (no I/O).

A frame runs a version's code when its globals *are* that version's namespace
(identity, never equality: code objects compare by value, so an unchanged
function of the current version would look old). Threads are scanned through
``sys._current_frames()``; asyncio tasks of every event loop through their
coroutine chains (``cr_await``/``gi_yieldfrom``/``ag_await``), which see
suspended coroutines and generators that no thread stack shows.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import sys
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_ASYNC_WRAPPERS = ("async_generator_asend", "async_generator_athrow")


@dataclass(frozen=True, eq=False)
class Offender:
    """A thread or task with a frame executing the scanned version's code."""

    kind: str  # "thread" or "task"
    target: Any  # thread ident (int) or asyncio.Task
    description: str


def every_task() -> list[asyncio.Task[Any]]:
    """All live asyncio tasks of every event loop in the process."""
    tasks: list[Any] = []
    module = asyncio.tasks
    for attr in ("_all_tasks", "_scheduled_tasks"):
        registry = getattr(module, attr, None)
        if registry is not None:
            # list() of the underlying set is one C call: no concurrent-change error.
            tasks.extend(ref() for ref in list(registry.data))
    eager = getattr(module, "_eager_tasks", None)
    if eager is not None:
        tasks.extend(list(eager))
    return [task for task in dict.fromkeys(tasks) if task is not None and not task.done()]


def coroutine_frames(task: asyncio.Task[Any]) -> Iterator[types.FrameType]:
    """The frames of a task's await chain, outermost first (suspended ones included)."""
    return _frames_from(task.get_coro())


def _frames_from(obj: Any) -> Iterator[types.FrameType]:
    for _ in range(10_000):
        kind = type(obj)
        if kind is types.CoroutineType:
            frame, obj = obj.cr_frame, obj.cr_await
        elif kind is types.GeneratorType:
            frame, obj = obj.gi_frame, obj.gi_yieldfrom
        elif kind is types.AsyncGeneratorType:
            frame, obj = obj.ag_frame, obj.ag_await
        elif kind.__name__ in _ASYNC_WRAPPERS:
            # `async for` awaits a wrapper with no public link to its generator.
            frame = None
            obj = next(
                (r for r in gc.get_referents(obj) if isinstance(r, types.AsyncGeneratorType)),
                None,
            )
        else:
            return
        if frame is not None:
            yield frame


def _chain_runs(task: asyncio.Task[Any], namespace: dict[str, Any]) -> bool:
    """Whether a task's await chain has a frame of ``namespace`` (the scan's hot loop)."""
    obj: Any = task.get_coro()
    while type(obj) is types.CoroutineType:
        frame = obj.cr_frame
        if frame is not None and frame.f_globals is namespace:
            return True
        obj = obj.cr_await
    if obj is None or type(obj).__name__ == "FutureIter" or isinstance(obj, asyncio.Future):
        return False
    return _runs(_frames_from(obj), namespace)


def _stack(frame: types.FrameType | None) -> list[types.FrameType]:
    frames = []
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    return frames


def _running_tasks() -> dict[int, asyncio.Task[Any]]:
    """Thread ident -> the task that thread's event loop is stepping right now."""
    current = getattr(asyncio.tasks, "_current_tasks", {})
    result = {}
    for loop, task in list(current.items()):
        ident = getattr(loop, "_thread_id", None)
        if ident is not None and task is not None:
            result[ident] = task
    return result


def _split(ident: int, frames: list[types.FrameType], running: dict[int, Any]) -> int:
    """How many of a thread's top frames belong to the task its loop is stepping."""
    task = running.get(ident)
    if task is None:
        return 0
    root = getattr(task.get_coro(), "cr_frame", None)
    for index, frame in enumerate(frames):
        if frame is root:
            return index + 1
    return 0


def _describe_thread(ident: int) -> str:
    for thread in threading.enumerate():
        if thread.ident == ident:
            return f"thread {thread.name!r} (ident {ident})"
    return f"thread ident {ident}"


def _describe_task(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    return f"task {task.get_name()!r} ({getattr(coro, '__qualname__', type(coro).__name__)})"


def _runs(frames: Iterator[types.FrameType] | list[types.FrameType], ns: dict[str, Any]) -> bool:
    return any(frame.f_globals is ns for frame in frames)


def find_offenders(namespace: dict[str, Any]) -> list[Offender]:
    """Every thread and task with a frame whose globals are ``namespace``.

    Frames a thread runs on behalf of the task its event loop is stepping count
    for that task, so a purge cancels the task rather than hitting the loop's
    thread.
    """
    offenders: list[Offender] = []
    blamed: set[int] = set()
    running = _running_tasks()
    stacks = {ident: _stack(top) for ident, top in sys._current_frames().items()}
    try:
        for ident, frames in stacks.items():
            cut = _split(ident, frames, running)
            if cut and _runs(frames[:cut], namespace):
                task = running[ident]
                blamed.add(id(task))
                offenders.append(Offender("task", task, _describe_task(task)))
            if _runs(frames[cut:], namespace):
                offenders.append(Offender("thread", ident, _describe_thread(ident)))
    finally:
        # The stacks hold this very frame: a cycle that would keep every frame
        # (and the namespace argument) alive until the next collection.
        stacks.clear()
        frames = []
    for task in every_task():
        if id(task) not in blamed and _chain_runs(task, namespace):
            offenders.append(Offender("task", task, _describe_task(task)))
    return offenders


def target_runs(target: Any, namespace: dict[str, Any]) -> bool:
    """Whether one thread (Thread or ident) or task has a frame running ``namespace``."""
    if isinstance(target, asyncio.Future):
        if _runs(coroutine_frames(target), namespace):  # type: ignore[arg-type]
            return True
        for ident, task in _running_tasks().items():
            if task is target:
                stack = _stack(sys._current_frames().get(ident))
                try:
                    return _runs(stack[: _split(ident, stack, _running_tasks())], namespace)
                finally:
                    stack.clear()  # may hold this frame: no cycle through its locals
        return False
    thread = target.ident if isinstance(target, threading.Thread) else target
    if not isinstance(thread, int):
        raise TypeError(f"expected a thread, a thread ident or an asyncio task, got {target!r}")
    frames = _stack(sys._current_frames().get(thread))
    try:
        return _runs(frames[_split(thread, frames, _running_tasks()) :], namespace)
    finally:
        frames.clear()  # may hold this frame: no cycle through its locals


def interrupt(offender: Offender, exc_type: type[BaseException]) -> bool:
    """Ask one offender to stop: cancel a task (in its loop's thread) or raise in a thread.

    Returns False when it cannot be asked: the calling thread itself, a task
    whose loop is closed, a thread that is gone. Delivery is not guaranteed:
    a thread blocked in a C call sees the exception only when it returns to
    Python, and code catching BaseException (or CancelledError) can swallow it.
    """
    if offender.kind == "task":
        task = offender.target
        loop = task.get_loop()
        if loop.is_closed():
            return False
        if loop.is_running():
            loop.call_soon_threadsafe(task.cancel)
        else:
            task.cancel()
        return True
    ident = offender.target
    if ident == threading.get_ident():
        return False
    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), ctypes.py_object(exc_type)
    )
    return bool(done == 1)
