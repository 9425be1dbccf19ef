"""One service: its thread, its loop in stable code, its supervisor and its code changes.

The loop never holds a frame of the callback module between messages: before each
ordinary message it asks the code server for the module's current version, runs a
code_change if the version moved, then calls the callback in that version's namespace.
A service's *turn* (a lock) is held while its state is in use: by its thread around
every message, or, between messages, by a migrator changing its code in place.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import threading
import time
import traceback
from concurrent.futures import Future, InvalidStateError
from typing import Any

from hotmesh import code
from hotmesh._errors import NoSuchService, ServiceCrashed, ServiceError
from hotmesh.service._mailbox import Call, Cast, Info, Mailbox, Message, System
from hotmesh.service._policy import CodeStep, RestartIntensity, next_code_step, should_restart
from hotmesh.service._records import Migration, ServiceStatus

log = logging.getLogger("hotmesh.service")

_STOP = object()
# The service whose code a migrator changes in place on this thread, if any.
_acting = threading.local()


class Service:
    """A gen_server-like service: one thread, one mailbox, state owned by the thread.

    Everything that touches the state or the running version happens on the
    service's own thread; other threads only post messages and read snapshots.
    """

    def __init__(
        self,
        name: str,
        module: str,
        args: tuple[Any, ...],
        *,
        restart: str,
        max_restarts: int,
        period: float,
    ) -> None:
        self.name = name
        self.module = module
        self.args = args
        self.restart = restart
        self.intensity = RestartIntensity(max_restarts, period)
        self.mailbox = Mailbox()
        self.state: Any = None
        # The version whose functions run (None: an unmanaged module, called through
        # sys.modules); the one run before it (to recognise a revert); and the version
        # a failed code_change aimed at (so it is not retried on every message).
        self.running: code.Version | None = None
        self.previous: str | None = None
        self.failed_target: str | None = None
        self.last_migration: Migration | None = None
        self.last_crash: str | None = None
        self.suspended = False
        self.status = "starting"
        self.restarts = 0
        self.handled = 0
        self.started: Future[None] = Future()
        # Held while the state is in use: by the thread around each message, or by
        # a migrator that changes the code in place while the service is idle.
        self.turn = threading.Lock()
        self.thread = threading.Thread(
            target=self._run, name=f"hotmesh-service-{name}", daemon=True
        )

    # -- posting (any thread) ------------------------------------------------

    def post(self, message: Message) -> None:
        """Queue an ordinary message; raises NoSuchService if the service has ended."""
        if not self.mailbox.put(message):
            raise NoSuchService(self._gone_text())

    def post_system(self, op: str, arg: Any = None) -> Future[Any]:
        """Queue a system message; its future gets the result."""
        message = System(op, arg)
        if not self.mailbox.put_system(message):
            raise NoSuchService(self._gone_text())
        return message.future

    def snapshot(self) -> ServiceStatus:
        """A consistent-enough status snapshot (read without stopping the service)."""
        running = self.running
        current = code.current_version(self.module) if running is not None else None
        status = self.status
        if status == "running" and self.suspended:
            status = "suspended"
        return ServiceStatus(
            name=self.name,
            module=self.module,
            status=status,
            vsn=running.vsn if running is not None else None,
            # Pinned: a code_change to the current version failed. (A service that
            # simply has not had a message since a load is not pinned.)
            pinned=bool(current is not None and current.vsn == self.failed_target),
            restarts=self.restarts,
            queued=len(self.mailbox),
            handled=self.handled,
            last_crash=self.last_crash,
            last_migration=self.last_migration,
        )

    def is_alive(self) -> bool:
        """True while the service takes messages (not stopped, not given up)."""
        return self.status in ("starting", "running")

    def is_current(self) -> bool:
        """Whether the calling thread acts as this service (its thread, or a migrator
        running its code_change in place): a request to itself would wait for itself."""
        return (
            threading.current_thread() is self.thread or getattr(_acting, "service", None) is self
        )

    def try_migrate_in_place(self) -> tuple[bool, Migration | None]:
        """Change code now on the calling thread if the service is between messages.

        Returns ``(False, None)`` when it is busy in a callback (its thread holds the
        turn); else ``(True, what the migrate system message would have returned)``.
        The service's thread waits for the turn before its next message, so that
        message runs the new code, exactly as after the system message.
        """
        if not self.turn.acquire(blocking=False):
            return False, None
        _acting.service = self
        try:
            if not self.is_alive():
                return True, None
            return True, self._migrate_now(quiet=True)
        finally:
            _acting.service = None
            self.turn.release()

    # -- the loop (service thread) -------------------------------------------

    def _run(self) -> None:
        with self.turn:
            try:
                self._start_instance()
            except Exception as exc:
                self.status = "failed"
                self.last_crash = _format(exc)
                self.mailbox.close()
                self.started.set_exception(
                    ServiceCrashed(f"service {self.name}: init failed\n{self.last_crash}")
                )
                return
            self.status = "running"
            self.started.set_result(None)
        while True:
            message = self.mailbox.take(normal=not self.suspended)
            with self.turn:
                if not self._step(message):
                    return
            del message  # hold no reference to the request between messages

    def _step(self, message: Message | System) -> bool:
        """Handle one message (holding the turn); False once the loop must end."""
        if isinstance(message, System):
            return self._system(message) is not _STOP
        try:
            self._sync_code()
            self._handle(message)
        except Exception as exc:
            if not self._crashed(exc, message):
                return False
        self.handled += 1
        return True

    def _start_instance(self) -> None:
        """Run ``init(*args)`` in the module's current version (first start and restarts)."""
        importlib.import_module(self.module)
        self.running = code.current_version(self.module)
        self.previous = None
        self.failed_target = None
        self.suspended = False
        self.state = self._callback("init")(*self.args)

    def _callbacks(self) -> dict[str, Any]:
        if self.running is not None:
            return self.running.namespace
        # An unmanaged module: look it up through sys.modules on every message, so
        # importlib.reload-style replacement is still seen.
        return vars(importlib.import_module(self.module))

    def _callback(self, name: str) -> Any:
        fn = self._callbacks().get(name)
        if fn is None:
            raise ServiceError(f"callback module {self.module} defines no {name}()")
        return fn

    def _handle(self, message: Message) -> None:
        if isinstance(message, Call):
            result = self._callback("handle_call")(message.msg, self.state)
            if not (isinstance(result, tuple) and len(result) == 2):
                raise ServiceError(
                    f"{self.module}.handle_call must return (reply, new_state), "
                    f"got {type(result).__name__}"
                )
            reply, self.state = result
            _resolve(message.future, reply)
        elif isinstance(message, Cast):
            self.state = self._callback("handle_cast")(message.msg, self.state)
        elif isinstance(message, Info):
            fn = self._callbacks().get("handle_info")
            if fn is None:
                # OTP's default handle_info logs and ignores the stray message.
                log.warning("service %s: no handle_info; dropped %r", self.name, message.msg)
            else:
                self.state = fn(message.msg, self.state)

    # -- code change ----------------------------------------------------------

    def _sync_code(self, *, quiet: bool = False) -> None:
        """Move to the module's current version, running code_change, if it changed."""
        running = self.running
        if running is None:
            return
        current = code.current_version(self.module)
        if current is None:
            return  # deleted from the code server: keep the code we have
        step = next_code_step(running.vsn, self.previous, current.vsn, self.failed_target)
        if step is CodeStep.STAY:
            self.failed_target = None
        elif step is not CodeStep.PINNED:
            self._change_code(running, current, down=step is CodeStep.DOWN, quiet=quiet)

    def _change_code(
        self, running: code.Version, target: code.Version, *, down: bool, quiet: bool = False
    ) -> None:
        if down:
            # Erlang's downgrade of a dynamic module: the leaving (newer) version knows
            # both state formats, so its code_change turns the state back.
            fn = running.namespace.get("code_change")
            arg: Any = ("down", _declared_vsn(target))
        else:
            fn = target.namespace.get("code_change")
            arg = _declared_vsn(running)
        try:
            new_state = fn(arg, self.state) if fn is not None else self.state
        except Exception as exc:
            error = _format(exc)
            self.failed_target = target.vsn
            self.last_migration = Migration(
                self.name, self.module, running.vsn, target.vsn, False, error, down
            )
            log.error(
                "service %s: code_change %s -> %s failed; keeps running %s with its state\n%s",
                self.name,
                running.vsn,
                target.vsn,
                running.vsn,
                error,
            )
            return
        self.state = new_state
        self.previous = running.vsn
        self.running = target
        self.failed_target = None
        self.last_migration = Migration(
            self.name, self.module, running.vsn, target.vsn, True, None, down
        )
        # migrate() sums up its pass in one line; a change between messages says so here.
        level = logging.DEBUG if quiet else logging.INFO
        log.log(level, "service %s: code_change %s -> %s ok", self.name, running.vsn, target.vsn)

    def _migrate_now(self, *, quiet: bool = False) -> Migration | None:
        """The ``migrate`` system message: change code now and report the latest change."""
        self._sync_code(quiet=quiet)
        current = code.current_version(self.module)
        last = self.last_migration
        if current is not None and last is not None and last.to_vsn == current.vsn:
            return last
        return None

    # -- system messages ------------------------------------------------------

    def _system(self, message: System) -> object:
        future = message.future
        op = message.op
        if op == "stop":
            self._terminate(message.arg)
            self.status = "stopped"
            self._fail_queued()
            _resolve(future, None)
            return _STOP
        try:
            if op == "get_state":
                result = self.state
            elif op == "replace_state":
                result = self._replace_state(message.arg)
            elif op == "suspend":
                self.suspended, result = True, None
            elif op == "resume":
                self.suspended, result = False, None
            elif op == "migrate":
                result = self._migrate_now()
            else:
                raise ServiceError(f"unknown system message {op!r}")
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return None
        _resolve(future, result)
        return None

    def _replace_state(self, fn: Any) -> Any:
        try:
            new_state = fn(self.state)
        except Exception as exc:
            raise ServiceError(
                f"replace_state({self.name!r}): the function raised "
                f"{type(exc).__name__}: {exc}; the state is unchanged"
            ) from exc
        self.state = new_state
        return new_state

    # -- crashes and supervision ---------------------------------------------

    def _crashed(self, exc: Exception, message: Message) -> bool:
        """Handle a callback crash; True if the service was restarted and loops on."""
        text = _format(exc)
        self.last_crash = text
        log.error("service %s crashed handling %r\n%s", self.name, message.msg, text)
        if isinstance(message, Call):
            crash = ServiceCrashed(
                f"service {self.name} crashed handling {_short(message.msg)}: "
                f"{type(exc).__name__}: {exc}\n--- service traceback ---\n{text.rstrip()}"
            )
            if not message.future.done():
                # The caller may have timed out and cancelled meanwhile.
                with contextlib.suppress(InvalidStateError):
                    message.future.set_exception(crash)
        self._terminate(exc)
        return self._restart()

    def _restart(self) -> bool:
        while should_restart(self.restart, crashed=True) and self.intensity.allow(time.monotonic()):
            self.restarts += 1
            try:
                self._start_instance()
            except Exception as exc:
                self.last_crash = _format(exc)
                log.error("service %s: init failed on restart\n%s", self.name, self.last_crash)
                continue
            log.warning("service %s restarted from init (restart %d)", self.name, self.restarts)
            return True
        self.status = "failed"
        log.error(
            "service %s: supervisor gives up (%s; %d restarts, at most %d in %.1fs)",
            self.name,
            self.restart,
            self.restarts,
            self.intensity.max_restarts,
            self.intensity.period,
        )
        self._fail_queued()
        return False

    def _terminate(self, reason: Any) -> None:
        fn = self._callbacks().get("terminate")
        if fn is None:
            return
        try:
            fn(reason, self.state)
        except Exception:
            log.exception("service %s: terminate raised (ignored)", self.name)

    def _fail_queued(self) -> None:
        for message in self.mailbox.close():
            future = getattr(message, "future", None)
            if future is not None and not future.done():
                with contextlib.suppress(InvalidStateError):
                    future.set_exception(NoSuchService(self._gone_text()))

    def _gone_text(self) -> str:
        if self.status == "failed":
            return (
                f"service {self.name} is not running: its supervisor gave up after "
                f"{self.restarts} restarts (see service_status({self.name!r}))"
            )
        return f"service {self.name} is not running ({self.status})"


def _declared_vsn(version: code.Version) -> str:
    """The version a code_change sees: the module's ``__vsn__`` if it declares one.

    Like Erlang's ``-vsn`` attribute, falling back to the code server's version id.
    """
    declared = version.namespace.get("__vsn__")
    return str(declared) if declared is not None else version.vsn


def _resolve(future: Future[Any], value: Any) -> None:
    # The caller may have given up (timeout) and cancelled the future.
    with contextlib.suppress(InvalidStateError):
        future.set_result(value)


def _format(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
