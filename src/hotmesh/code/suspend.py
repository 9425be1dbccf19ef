"""Suspending modules around a state conversion: Erlang's suspend, code_change, resume (no I/O).

A load whose new version defines ``__code_change__(old_namespace, old_version)``
runs it at the switch, with the module suspended, so that it can convert state
shared with the old version (``keep``) in place:

1. The module's facade shows a *gate*: a copy of the old version's namespace in
   which every function of the version waits until the load ends, then calls
   the function of whatever version is current then. Code already running the
   old version (a frame of it on the calling thread's stack) is let through to
   the old function, which is still current: it can finish. So is a plain
   function called from a thread running an event loop, until the conversion
   starts (blocking that thread would stall the old coroutines being waited
   for); the conversion waits for those calls to return.
2. Once no thread or asyncio task runs the old version (Erlang: every process
   suspended between messages), ``__code_change__`` runs. Old code is not
   running and new code has not started, so nothing else touches the state.
3. The switch publishes the new version and the gate opens: the waiting calls
   enter the new version.

If the old code does not drain within the timeout, or the hook raises, the
facade shows the old version again, the waiting calls enter it, and the load
fails: nothing changed (except what the hook itself mutated before raising).

``revert`` does the same the other way round when the version being left
defines ``__code_revert__(old_namespace, old_version)`` (``old_*`` being the
version that becomes current again): it converts the state back.
Waiting threads block on an Event; waiting coroutines await a future, so their
event loop keeps running the old code that must finish.
"""

from __future__ import annotations

import concurrent.futures
import functools
import inspect
import sys
import threading
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hotmesh._errors import LoadError
from hotmesh.code import scan
from hotmesh.code.facade import Switch
from hotmesh.code.versions import Version

HOOK = "__code_change__"
REVERT_HOOK = "__code_revert__"
TIMEOUT = 5.0  # seconds old code gets to drain (Erlang's sys:suspend default)


_OPEN, _OLD, _COUNTED, _WAIT = range(4)


class _Gate:
    """What every gated call of one suspension goes through."""

    def __init__(self) -> None:
        self.loader = threading.get_ident()
        self._lock = threading.Lock()
        self._opened = threading.Event()
        self._future: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._converting = False
        self._passing = 0  # calls let into the old version from event loop threads

    def open(self) -> None:
        self._opened.set()
        if not self._future.done():
            self._future.set_result(None)

    def route(self, old: dict[str, Any], may_pass: bool) -> int:
        """How a call goes: to the current version (open), to the old one, or it waits.

        The loading thread and code already running the old version (a frame
        of it on this thread's stack) call the old function, still current.
        With ``may_pass`` (a plain function), a call from a thread running an
        event loop also does until the conversion starts, counted so that the
        conversion waits for it: blocking that thread would stall the old
        coroutines the suspension waits for.
        """
        if self._opened.is_set():
            return _OPEN
        if threading.get_ident() == self.loader:
            return _OLD
        frame: types.FrameType | None = sys._getframe(2)
        while frame is not None:
            if frame.f_globals is old:
                return _OLD
            frame = frame.f_back
        aio = sys.modules.get("asyncio")  # never imported: no loop runs (and no import)
        if may_pass and aio is not None and aio._get_running_loop() is not None:
            with self._lock:
                if not self._converting:
                    self._passing += 1
                    return _COUNTED
        return _WAIT

    def left(self) -> None:
        with self._lock:
            self._passing -= 1

    def settle(self) -> bool:
        """Start the conversion unless calls let through are still running: whether it did."""
        with self._lock:
            if self._passing:
                return False
            self._converting = True
            return True

    def passing(self) -> int:
        return self._passing

    def wait(self) -> None:
        self._opened.wait()

    async def wait_async(self) -> None:
        import asyncio

        await asyncio.wrap_future(self._future)


def _gated(gate: _Gate, facade: types.ModuleType, name: str, fn: Any) -> Any:
    """A function that waits at the gate, then calls ``name`` of the current version."""
    old = fn.__globals__
    flags = fn.__code__.co_flags
    wrapper: Callable[..., Any]
    if flags & inspect.CO_COROUTINE:

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            way = gate.route(old, False)
            if way == _OLD:
                return await fn(*args, **kwargs)
            if way == _WAIT:
                await gate.wait_async()
            return await getattr(facade, name)(*args, **kwargs)

    elif flags & inspect.CO_ASYNC_GENERATOR:

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            way = gate.route(old, False)
            if way == _WAIT:
                await gate.wait_async()
            target = fn if way == _OLD else getattr(facade, name)
            async for item in target(*args, **kwargs):
                yield item

    elif flags & inspect.CO_GENERATOR:

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            way = gate.route(old, False)
            if way == _WAIT:
                gate.wait()
            target = fn if way == _OLD else getattr(facade, name)
            return (yield from target(*args, **kwargs))

    else:

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            way = gate.route(old, True)
            if way == _OLD:
                return fn(*args, **kwargs)
            if way == _COUNTED:
                try:
                    return fn(*args, **kwargs)
                finally:
                    gate.left()
            if way == _WAIT:
                gate.wait()
            return getattr(facade, name)(*args, **kwargs)

    return functools.wraps(fn)(wrapper)


def gate_namespace(gate: _Gate, facade: types.ModuleType, old: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``old`` whose functions (those defined by that version) wait at ``gate``."""
    gated = dict(old)
    for name, value in old.items():
        if isinstance(value, types.FunctionType) and value.__globals__ is old:
            gated[name] = _gated(gate, facade, name, value)
    return gated


@dataclass(eq=False)
class _Change:
    """One module: the version that stops running, and the hook (called with ``old``)."""

    facade: types.ModuleType
    leaving: Version  # drained, then no longer current
    old: Version  # what the hook gets: the version loaded over, or the one reverted to
    hook_name: str
    hook: Callable[[dict[str, Any], Version], object]


class Suspension:
    """The modules of one load whose new version converts state at the switch."""

    def __init__(self, changes: list[_Change]) -> None:
        self._changes = changes
        self._gate = _Gate()

    @classmethod
    def of(
        cls,
        new: dict[str, Version],
        facades: dict[str, types.ModuleType],
        previous: dict[str, Version | None],
    ) -> Suspension | None:
        """A suspension for the modules whose new version defines the hook, or None."""
        changes = []
        for mod, version in new.items():
            hook = version.namespace.get(HOOK)
            old = previous.get(mod)
            if old is not None and callable(hook):
                changes.append(_Change(facades[mod], old, old, HOOK, hook))
        return cls(changes) if changes else None

    @classmethod
    def of_revert(
        cls,
        entries: dict[str, tuple[Version | None, Version | None]],
        facades: dict[str, types.ModuleType],
    ) -> Suspension | None:
        """For a revert (module -> (current, the old version coming back)), or None."""
        changes = []
        for mod, (current, old) in entries.items():
            hook = current.namespace.get(REVERT_HOOK) if current is not None else None
            if current is not None and old is not None and callable(hook):
                changes.append(_Change(facades[mod], current, old, REVERT_HOOK, hook))
        return cls(changes) if changes else None

    def begin(self) -> None:
        """Show the gates (one atomic step; the caller holds the switch lock)."""
        switch = Switch()
        for change in self._changes:
            gated = gate_namespace(self._gate, change.facade, change.leaving.namespace)
            switch.show(change.facade, gated)
        switch.apply()

    def convert(self, timeout: float | None = None) -> None:
        """Wait for old code to drain (``TIMEOUT`` by default), then run the hooks.

        Raises LoadError if the old code does not drain or a hook fails.
        """
        timeout = TIMEOUT if timeout is None else timeout
        names = ", ".join(change.leaving.module for change in self._changes)
        hooks = " / ".join(sorted({change.hook_name for change in self._changes}))
        running = self._drain(timeout)
        if running:
            raise LoadError(
                f"cannot suspend {names} for {hooks}: still running the version being left "
                f"after {timeout:g} s: {', '.join(running)}"
            )
        for change in self._changes:
            try:
                change.hook(change.old.namespace, change.old)
            except Exception as exc:
                raise LoadError(
                    f"switching {change.leaving.module} failed in its {change.hook_name} hook: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc

    def abort(self) -> None:
        """Show the versions being left again and let the waiting calls into them."""
        switch = Switch()
        for change in self._changes:
            switch.show(change.facade, change.leaving.namespace)
        switch.apply()
        self._gate.open()

    def end(self) -> None:
        """Let the waiting calls in (after the switch published the arriving versions)."""
        self._gate.open()

    def _drain(self, timeout: float) -> list[str]:
        """Wait until no thread or task (but this one) runs a version being left; the rest."""
        me = threading.get_ident()
        deadline = time.monotonic() + timeout
        delay = 0.0002
        while True:
            running = [
                offender.description
                for change in self._changes
                for offender in scan.find_offenders(change.leaving.namespace, generators=False)
                if not (offender.kind == "thread" and offender.target == me)
            ]
            if not running and self._gate.settle():
                return []
            if time.monotonic() >= deadline:
                passing = self._gate.passing()
                return running + ([f"{passing} call(s) from event loop threads"] if passing else [])
            # Poll (the old code finishes on its own schedule), backing off so that
            # scanning many threads and tasks does not starve the code it waits for.
            time.sleep(delay)
            delay = min(delay * 2, 0.01)
