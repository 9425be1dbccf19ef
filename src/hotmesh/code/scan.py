"""Finding and stopping the threads, tasks and suspended generators running a version (no I/O).

A frame runs a version's code when its globals *are* that version's namespace
(identity, never equality: code objects compare by value, so an unchanged
function of the current version would look old). Threads are scanned through
``sys._current_frames()``; asyncio tasks of every event loop through their
coroutine chains (``cr_await``/``gi_yieldfrom``/``ag_await``), which see
suspended coroutines and generators that no thread stack shows. Generators,
coroutines and async generators suspended outside any task (a half-consumed
iterator, a coroutine driven by hand) are found through the garbage collector,
as the objects referring to the version's generator code objects; that pass
runs only for versions that define generator or coroutine functions.
"""

from __future__ import annotations

import ctypes
import gc
import inspect
import sys
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

_ASYNC_WRAPPERS = ("async_generator_asend", "async_generator_athrow")
_SUSPENDABLE = (
    inspect.CO_GENERATOR
    | inspect.CO_COROUTINE
    | inspect.CO_ITERABLE_COROUTINE
    | inspect.CO_ASYNC_GENERATOR
)
_KINDS = {
    types.GeneratorType: "generator",
    types.CoroutineType: "coroutine",
    types.AsyncGeneratorType: "async generator",
}


@dataclass(frozen=True, eq=False)
class Offender:
    """A thread or task with a frame executing the scanned version's code."""

    kind: str  # "thread", "task" or "generator" (also coroutines and async generators)
    target: Any  # thread ident (int), asyncio.Task, or the suspended generator object
    description: str


def _asyncio() -> Any:
    """asyncio if this process imported it, else None.

    A process that never did has no task to scan, and is spared the import
    (asyncio pulls in ssl: about 8 MB of a node's memory).
    """
    return sys.modules.get("asyncio")


def _is_future(obj: Any) -> bool:
    aio = _asyncio()
    return aio is not None and isinstance(obj, aio.Future)


def every_task() -> list[asyncio.Task[Any]]:
    """All live asyncio tasks of every event loop in the process."""
    tasks: list[Any] = []
    aio = _asyncio()
    if aio is None:
        return []
    module = aio.tasks
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


def _links(obj: Any) -> Iterator[tuple[Any, types.FrameType | None]]:
    """Each generator-like object of an await/yield-from chain, with its frame."""
    for _ in range(10_000):
        kind = type(obj)
        if kind is types.CoroutineType:
            yield obj, obj.cr_frame
            obj = obj.cr_await
        elif kind is types.GeneratorType:
            yield obj, obj.gi_frame
            obj = obj.gi_yieldfrom
        elif kind is types.AsyncGeneratorType:
            yield obj, obj.ag_frame
            obj = obj.ag_await
        elif kind.__name__ in _ASYNC_WRAPPERS:
            # `async for` awaits a wrapper with no public link to its generator.
            obj = next(
                (r for r in gc.get_referents(obj) if isinstance(r, types.AsyncGeneratorType)),
                None,
            )
        else:
            return


def _frames_from(obj: Any) -> Iterator[types.FrameType]:
    return (frame for _obj, frame in _links(obj) if frame is not None)


def _suspendable_codes(namespace: dict[str, Any]) -> list[types.CodeType]:
    """The generator, coroutine and async generator code objects of a version.

    Found from the version's functions and classes (methods, static and class
    methods, properties, nested classes), then through nested code constants,
    so closures and local generator functions count.
    """
    name = namespace.get("__name__")
    codes: list[types.CodeType] = []
    seen: set[int] = set()
    pending: list[Any] = list(namespace.values())
    while pending:
        value = pending.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, types.FunctionType):
            if value.__globals__ is namespace:
                pending.append(value.__code__)
        elif isinstance(value, types.CodeType):
            if value.co_flags & _SUSPENDABLE:
                codes.append(value)
            pending.extend(c for c in value.co_consts if isinstance(c, types.CodeType))
        elif isinstance(value, staticmethod | classmethod):
            pending.append(value.__func__)
        elif isinstance(value, property):
            pending.extend((value.fget, value.fset, value.fdel))
        elif isinstance(value, type) and value.__module__ == name:
            pending.extend(vars(value).values())
    return codes


def _suspended(namespace: dict[str, Any], on_stacks: set[int]) -> list[Any]:
    """Generators, coroutines and async generators of a version, started or not, not finished.

    Leaves out those executing right now (their frame is on a thread's stack:
    the thread scan reports them).
    """
    codes = _suspendable_codes(namespace)
    if not codes:
        return []
    found = []
    for obj in gc.get_referrers(*codes):
        kind = type(obj)
        if kind is types.GeneratorType:
            frame = obj.gi_frame
        elif kind is types.CoroutineType:
            frame = obj.cr_frame
        elif kind is types.AsyncGeneratorType:
            frame = obj.ag_frame
        else:
            continue
        if frame is not None and frame.f_globals is namespace and id(frame) not in on_stacks:
            found.append(obj)
    return found


def _describe_suspended(obj: Any) -> str:
    return f"suspended {_KINDS[type(obj)]} {getattr(obj, '__qualname__', '?')!r}"


def _chain_runs(task: asyncio.Task[Any], namespace: dict[str, Any]) -> bool:
    """Whether a task's await chain has a frame of ``namespace`` (the scan's hot loop)."""
    obj: Any = task.get_coro()
    while type(obj) is types.CoroutineType:
        frame = obj.cr_frame
        if frame is not None and frame.f_globals is namespace:
            return True
        obj = obj.cr_await
    if obj is None or type(obj).__name__ == "FutureIter" or _is_future(obj):
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
    aio = _asyncio()
    current = getattr(aio.tasks, "_current_tasks", {}) if aio is not None else {}
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


def find_offenders(namespace: dict[str, Any], *, generators: bool = True) -> list[Offender]:
    """Every thread, task and (with ``generators``) suspended generator running ``namespace``.

    Frames a thread runs on behalf of the task its event loop is stepping count
    for that task, so a purge cancels the task rather than hitting the loop's
    thread. A generator or coroutine suspended in a task's await chain counts
    for that task; one suspended elsewhere is an offender of its own.
    """
    offenders: list[Offender] = []
    blamed: set[int] = set()
    in_old_code: list[asyncio.Task[Any]] = []
    running = _running_tasks()
    stacks = {ident: _stack(top) for ident, top in sys._current_frames().items()}
    loose: list[Any] = []
    try:
        for ident, frames in stacks.items():
            cut = _split(ident, frames, running)
            if cut and _runs(frames[:cut], namespace):
                task = running[ident]
                blamed.add(id(task))
                in_old_code.append(task)
                offenders.append(Offender("task", task, _describe_task(task)))
            if _runs(frames[cut:], namespace):
                offenders.append(Offender("thread", ident, _describe_thread(ident)))
        if generators:
            on_stacks = {id(frame) for frames in stacks.values() for frame in frames}
            loose = _suspended(namespace, on_stacks)
    finally:
        # The stacks hold this very frame: a cycle that would keep every frame
        # (and the namespace argument) alive until the next collection.
        stacks.clear()
        frames = []
    for task in every_task():
        if id(task) not in blamed and _chain_runs(task, namespace):
            in_old_code.append(task)
            offenders.append(Offender("task", task, _describe_task(task)))
    if loose:
        # A task owning one of them has its frame in its chain, so it is one of
        # the tasks found above: only their chains are walked again.
        owned = {id(obj) for task in in_old_code for obj, _frame in _links(task.get_coro())}
        offenders += [
            Offender("generator", obj, _describe_suspended(obj))
            for obj in loose
            if id(obj) not in owned
        ]
    return offenders


def check_target(target: Any) -> None:
    """TypeError unless ``target`` is something check_process_code can look at."""
    if type(target) in _KINDS or isinstance(target, threading.Thread) or _is_future(target):
        return
    if not isinstance(target, int) or isinstance(target, bool):
        raise TypeError(
            "expected a thread, a thread ident, an asyncio task, or a generator, coroutine "
            f"or async generator, got {target!r:.60}"
        )


def target_runs(target: Any, namespace: dict[str, Any]) -> bool:
    """Whether a thread (Thread or ident), task or generator-like object runs ``namespace``.

    A generator, coroutine or async generator runs it when a frame of its
    yield-from/await chain does (suspended or executing).
    """
    if type(target) in _KINDS:
        return _runs(_frames_from(target), namespace)
    if _is_future(target):
        if _runs(coroutine_frames(target), namespace):
            return True
        for ident, task in _running_tasks().items():
            if task is target:
                stack = _stack(sys._current_frames().get(ident))
                try:
                    return _runs(stack[: _split(ident, stack, _running_tasks())], namespace)
                finally:
                    stack.clear()  # may hold this frame: no cycle through its locals
        return False
    check_target(target)
    thread: int | None = target.ident if isinstance(target, threading.Thread) else target
    if thread is None:
        return False  # a thread not started yet
    frames = _stack(sys._current_frames().get(thread))
    try:
        return _runs(frames[_split(thread, frames, _running_tasks()) :], namespace)
    finally:
        frames.clear()  # may hold this frame: no cycle through its locals


def interrupt(offender: Offender, exc_type: type[BaseException]) -> bool:
    """Ask one offender to stop: cancel a task, raise in a thread, close a generator.

    Returns False when it cannot be asked: the calling thread itself, a task
    whose loop is closed, a thread that is gone, a generator whose closing
    failed. Delivery to threads and tasks is not guaranteed: a thread blocked
    in a C call sees the exception only when it returns to Python, and code
    catching BaseException (or CancelledError) can swallow it. A generator is
    closed at once, in the calling thread (its ``finally`` blocks run here).
    """
    if offender.kind == "generator":
        return _close(offender.target)
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


def _close(obj: Any) -> bool:
    """Close a suspended generator, coroutine or async generator; whether it is finished."""
    try:
        if type(obj) is types.AsyncGeneratorType:
            closing = obj.aclose()
            try:
                closing.send(None)
            except StopIteration:
                return True
            closing.close()  # it awaits something while closing: it needs its event loop
            return False
        obj.close()
    except Exception:
        return False  # its finally raised, or it ignored GeneratorExit and yielded
    return True
