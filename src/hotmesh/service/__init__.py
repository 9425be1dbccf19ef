"""Upgradeable stateful services: Erlang's gen_server, sys and supervisor, for Python.

A service is a thread with a mailbox whose loop lives in hotmesh (stable code) and
calls a *callback module* on every message, through the code server's current
version of that module. After a load, the next message runs the new code; when the
module's version changed, the new version's ``code_change(old_vsn, state)`` runs
first, once. Nothing of the callback module is on the thread's stack between
messages, so ``hotmesh.code.soft_purge`` succeeds as soon as every service moved.

The callback module defines::

    def init(*args) -> state
    def handle_call(msg, state) -> (reply, new_state)
    def handle_cast(msg, state) -> new_state
    def handle_info(msg, state) -> new_state          # optional: else logged and dropped
    def terminate(reason, state) -> None              # optional
    def code_change(old_vsn, state) -> new_state      # optional: else state is kept
    __vsn__ = "2"                                     # optional: the vsn code_change sees

Example::

    start_service("counter", "myapp.counter", 0)
    service_call("counter", ("add", 5))          # -> 5, in the module's current code
    migrate(["myapp.counter"])                   # after a load: code_change now, or fail
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

from hotmesh import code
from hotmesh._errors import (
    CallTimeout,
    NoSuchService,
    RemoteError,
    ServiceCrashed,
    ServiceError,
)
from hotmesh._runtime import current_node
from hotmesh.service._mailbox import Call, Cast, Info
from hotmesh.service._policy import RESTART_TYPES
from hotmesh.service._records import Migration, ServiceStatus
from hotmesh.service._server import Service

__all__ = [
    "Migration",
    "ServiceStatus",
    "get_state",
    "migrate",
    "replace_state",
    "resume",
    "service_call",
    "service_call_async",
    "service_cast",
    "service_info",
    "service_status",
    "services",
    "start_service",
    "stop_service",
    "suspend",
]

log = logging.getLogger("hotmesh.service")

_lock = threading.Lock()
_registry: dict[str, Service] = {}


def start_service(
    name: str,
    module: str,
    *init_args: Any,
    restart: str = "permanent",
    max_restarts: int = 3,
    period: float = 5.0,
    timeout: float = 5.0,
) -> None:
    """Start service ``name`` running callback module ``module``; wait for its ``init``.

    ``init(*init_args)`` runs on the service's own thread and returns the first state.
    A crash in a callback restarts the service from ``init`` (OTP's supervisor) as
    ``restart`` says: ``permanent`` or ``transient`` restart, ``temporary`` never; more
    than ``max_restarts`` restarts within ``period`` seconds and the supervisor gives up.
    Returns nothing (so it can be called through ``Node.call`` from another node);
    see ``service_status(name)``.

    Raises:
        ServiceError: a service of that name is already running.
        ServiceCrashed: ``init`` raised (nothing stays registered).
        CallTimeout: ``init`` did not finish within ``timeout`` (it keeps starting).
        ValueError: bad ``name``, ``restart``, ``max_restarts`` or ``period``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a service name must be a non-empty str, got {name!r}")
    if restart not in RESTART_TYPES:
        raise ValueError(f"restart must be one of {', '.join(RESTART_TYPES)}, got {restart!r}")
    service = Service(
        name, module, init_args, restart=restart, max_restarts=max_restarts, period=period
    )
    with _lock:
        existing = _registry.get(name)
        if existing is not None and existing.is_alive():
            raise ServiceError(
                f"service {name} is already running ({existing.module}); stop_service it first"
            )
        _registry[name] = service
    service.thread.start()
    try:
        service.started.result(timeout)
    except TimeoutError:
        raise CallTimeout(f"service {name}: init did not finish within {timeout}s") from None
    except ServiceCrashed:
        with _lock:
            if _registry.get(name) is service:
                del _registry[name]
        raise


def stop_service(name: str, *, reason: Any = "stop", timeout: float = 5.0) -> None:
    """Stop a service: ``terminate(reason, state)`` runs, queued callers get NoSuchService.

    A service whose supervisor gave up is simply forgotten.

    Raises:
        NoSuchService: no service of that name.
        CallTimeout: it is busy in a callback for longer than ``timeout``.
    """
    service = _lookup(name)
    if service.is_alive():
        _wait(_lookup_other(name, "stop").post_system("stop", reason), name, "stop", timeout)
        service.thread.join(timeout)
    with _lock:
        if _registry.get(name) is service:
            del _registry[name]


def services(*, node: str | None = None) -> list[str]:
    """Names of the services known on this node (or ``node``), gave-up ones included, sorted."""
    if _is_remote(node):
        return list(_call_remote("services", node, "", None, 5.0))
    with _lock:
        return sorted(_registry)


def service_status(name: str, *, node: str | None = None) -> ServiceStatus:
    """Snapshot of a service: status, running version, pinned, restarts, last crash.

    Raises:
        NoSuchService: no service of that name (on that node).
    """
    if _is_remote(node):
        return ServiceStatus.from_dict(_call_remote("status", node, name, None, 5.0))
    return _lookup(name).snapshot()


def service_call(name: str, msg: Any, *, timeout: float = 5.0, node: str | None = None) -> Any:
    """Send ``msg`` to ``handle_call`` and return the reply (gen_server:call).

    With ``node`` (a node name other than this one) the call goes through the mesh to
    that node's service; ``msg`` and the reply must be able to travel.

    Raises:
        NoSuchService: no running service of that name (on that node).
        ServiceCrashed: the service crashed handling this message (the text carries
            the service's traceback); it is restarted by its supervisor.
        CallTimeout: no reply within ``timeout``; the message may still be handled.
    """
    if _is_remote(node):
        return _call_remote("call", node, name, msg, timeout)
    call = Call(msg)
    _lookup_other(name, "call").post(call)
    return _wait(call.future, name, "reply", timeout)


async def service_call_async(
    name: str, msg: Any, *, timeout: float = 5.0, node: str | None = None
) -> Any:
    """``service_call`` for asyncio code: awaits the reply without blocking the loop.

    Same errors as ``service_call``.
    """
    import asyncio  # only asyncio code gets here (importing it costs a node 8 MB)

    if _is_remote(node):
        return await asyncio.to_thread(service_call, name, msg, timeout=timeout, node=node)
    call = Call(msg)
    _lookup(name).post(call)
    try:
        return await asyncio.wait_for(asyncio.wrap_future(call.future), timeout)
    except TimeoutError:
        raise CallTimeout(_timeout_text(name, "reply", timeout)) from None


def service_cast(name: str, msg: Any, *, node: str | None = None) -> None:
    """Send ``msg`` to ``handle_cast`` without waiting for it to be handled (gen_server:cast).

    With ``node``, waits only until that node queued the message (one round trip).

    Raises:
        NoSuchService: no running service of that name (on that node).
    """
    if _is_remote(node):
        _call_remote("cast", node, name, msg, 5.0)
        return
    _lookup(name).post(Cast(msg))


def service_info(name: str, msg: Any, *, node: str | None = None) -> None:
    """Send a plain message to ``handle_info`` (Erlang's ``Pid ! Msg``).

    Raises:
        NoSuchService: no running service of that name (on that node).
    """
    if _is_remote(node):
        _call_remote("info", node, name, msg, 5.0)
        return
    _lookup(name).post(Info(msg))


def get_state(name: str, *, timeout: float = 5.0) -> Any:
    """The service's state, read between messages (sys:get_state); works while suspended."""
    return _system(name, "get_state", None, timeout)


def replace_state(name: str, fn: Callable[[Any], Any], *, timeout: float = 5.0) -> Any:
    """Replace the state with ``fn(state)`` between messages and return it (sys:replace_state).

    Raises:
        ServiceError: ``fn`` raised; the state is unchanged.
    """
    return _system(name, "replace_state", fn, timeout)


def suspend(name: str, *, timeout: float = 5.0) -> None:
    """Stop handling ordinary messages (they queue); system messages still run (sys:suspend)."""
    _system(name, "suspend", None, timeout)


def resume(name: str, *, timeout: float = 5.0) -> None:
    """Handle ordinary messages again, queued ones first (sys:resume)."""
    _system(name, "resume", None, timeout)


def migrate(modules: Iterable[str], *, timeout: float = 5.0) -> list[Migration]:
    """Make every service running one of ``modules`` change code now, and report.

    A service between two messages (also one suspended) changes code in place, in one
    pass on the calling thread, as Erlang's release handler changes suspended
    processes: it is held between messages while its code_change runs, and its next
    message runs the new code. A service busy in a callback gets a system message
    instead and changes code as soon as the callback returns; those are waited for, up
    to ``timeout`` in total. Either way: if the callback module's current version
    differs from the one it runs, the new version's ``code_change`` (or on a revert the
    leaving version's, with ``("down", vsn)``) runs once and the service moves to it.

    Returns one Migration per service whose latest code change targets the module's
    current version (including one that already changed between messages); a
    service with nothing to change is left out. A service that did not answer in
    time is reported ``ok=False`` (it still changes code before its next message).
    ``ok=False`` means that service kept its old code and state.
    """
    wanted = set(modules)
    with _lock:
        targets = [s for s in _registry.values() if s.module in wanted and s.is_alive()]
    report: list[Migration] = []
    asked: list[tuple[Service, Future[Any] | None]] = []
    for service in targets:
        if service.is_current():
            asked.append((service, None))
            continue
        done, migration = service.try_migrate_in_place()
        if done:
            if migration is not None:
                report.append(migration)
            continue
        try:
            asked.append((service, service.post_system("migrate")))
        except NoSuchService:
            continue
    _log_pass(report, len(asked))
    return report + _collect(asked, timeout)


def _log_pass(report: list[Migration], busy: int) -> None:
    """One line for the services changed in place (each failure was logged on its own)."""
    if report or busy:
        ok = sum(1 for m in report if m.ok)
        modules = ", ".join(sorted({m.module for m in report})) or "-"
        log.info(
            "migrate: %d service(s) migrated in place (%d ok, %d failed; %s), %d busy ones asked",
            len(report),
            ok,
            len(report) - ok,
            modules,
            busy,
        )


def _collect(asked: list[tuple[Service, Future[Any] | None]], timeout: float) -> list[Migration]:
    deadline = time.monotonic() + timeout
    report: list[Migration] = []
    for service, future in asked:
        if future is None:
            report.append(_unanswered(service, "migrate() was called from the service itself"))
            continue
        try:
            migration = future.result(max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            report.append(_unanswered(service, f"no answer within {timeout}s (busy callback)"))
            continue
        except NoSuchService:
            continue
        if migration is not None:
            report.append(migration)
    return report


def _unanswered(service: Service, why: str) -> Migration:
    running = service.running
    current = code.current_version(service.module)
    return Migration(
        service.name,
        service.module,
        running.vsn if running is not None else "?",
        current.vsn if current is not None else "?",
        False,
        f"code_change not confirmed: {why}; it runs before the service's next message",
    )


def _lookup(name: str) -> Service:
    with _lock:
        service = _registry.get(name)
    if service is None:
        raise NoSuchService(
            f"no service named {name!r} (running: {', '.join(services()) or 'none'})"
        )
    return service


def _lookup_other(name: str, what: str) -> Service:
    """The service, refusing a synchronous request from its own thread (it would deadlock)."""
    service = _lookup(name)
    if service.is_current():
        raise ServiceError(
            f"service {name} cannot {what} itself from its own callbacks (it would wait "
            "for itself); use service_cast or service_info"
        )
    return service


def _system(name: str, op: str, arg: Any, timeout: float) -> Any:
    return _wait(_lookup_other(name, op).post_system(op, arg), name, op, timeout)


def _wait(future: Future[Any], name: str, what: str, timeout: float) -> Any:
    try:
        return future.result(timeout)
    except TimeoutError:
        future.cancel()
        raise CallTimeout(_timeout_text(name, what, timeout)) from None


def _timeout_text(name: str, what: str, timeout: float) -> str:
    return (
        f"service {name}: no {what} within {timeout}s (busy or suspended); "
        "the message stays queued and may still be handled"
    )


def _is_remote(node: str | None) -> bool:
    if node is None:
        return False
    return node != current_node().name


_REMOTE_ERRORS: dict[str, type[ServiceError] | type[CallTimeout]] = {
    "ServiceCrashed": ServiceCrashed,
    "NoSuchService": NoSuchService,
    "CallTimeout": CallTimeout,
}


def _call_remote(kind: str, node: str | None, name: str, msg: Any, timeout: float) -> Any:
    """Run the local operation ``kind`` on ``node`` through the mesh (Node.call)."""
    assert node is not None
    try:
        return current_node().call(
            node, f"hotmesh.service._remote.{kind}", name, msg, timeout, timeout=timeout + 1.0
        )
    except RemoteError as exc:
        # Give the caller the same error type as a local call, with the remote text.
        module, _, type_name = exc.exc_type.rpartition(".")
        local = _REMOTE_ERRORS.get(type_name) if module.startswith("hotmesh") else None
        if local is None:
            raise
        raise local(f"{exc.message} (on {exc.node})") from exc
