"""The target side of remote calls: resolve the function, run it on a worker, reply.

No sockets here: replies leave through the ``send`` callable the node gives.
"""

from __future__ import annotations

import builtins
import importlib
import logging
import sys
import time
from collections.abc import Callable
from typing import Any, cast

from hotmesh._errors import EncodeError, MessageTooLarge, NoSuchFunction
from hotmesh._rpc import messages
from hotmesh._rpc.workers import WorkerPool
from hotmesh._runtime import CURRENT_NODE, NodeLike
from hotmesh._wire.frames import decode_frame

log = logging.getLogger("hotmesh.rpc")

Send = Callable[[bytes, dict[str, Any]], None]


def resolve(path: str) -> Callable[..., Any]:
    """The callable named by a dotted path (``pkg.mod.func`` or ``pkg.mod:Cls.meth``).

    Looks in ``sys.modules`` first and imports the module when needed, so each
    call reaches the module's current code.

    Raises:
        NoSuchFunction: nothing callable by that name.
    """
    # Fast path for the common ``module.func`` of a module already imported,
    # and for a builtin: still a lookup at call time, so new code is reached.
    module_name, dot, name = path.rpartition(".")
    module = sys.modules.get(module_name) if dot else builtins
    if module is not None and ":" not in path:
        found: Callable[..., Any] | None = getattr(module, name, None)
        if found is not None and callable(found):
            return found
    if ":" in path:
        module_name, _, attr_path = path.partition(":")
        candidates = [(module_name, attr_path.split("."))]
    else:
        parts = path.split(".")
        candidates = [(".".join(parts[:i]), parts[i:]) for i in range(len(parts) - 1, 0, -1)]
        candidates.append(("builtins", parts))
    for module_name, attrs in candidates:
        module = sys.modules.get(module_name)
        if module is None:
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name and module_name.startswith(exc.name):
                    continue
                raise
        target: Any = module
        try:
            for attr in attrs:
                target = getattr(target, attr)
        except AttributeError:
            continue
        if callable(target):
            return cast("Callable[..., Any]", target)
        raise NoSuchFunction(f"{path} is a {type(target).__name__}, not a function")
    raise NoSuchFunction(f"no function {path}")


class Dispatcher:
    """Runs call messages for one node on its worker pool and sends the replies."""

    def __init__(self, node: NodeLike, pool: WorkerPool, send: Send) -> None:
        self._node = node
        self._pool = pool
        self._send = send
        self.expired = 0

    def handle(self, sender: bytes, message: dict[str, Any]) -> None:
        """Accept a call message (any thread): drop it if late, else queue it on the pool."""
        if not self._expired(message):
            self._pool.submit(self._run, sender, message)

    def run(self, sender: bytes, message: dict[str, Any]) -> None:
        """Run a call message on this thread (a worker's) and send the reply; drop it if late."""
        # Every call to this node comes this way: ``_expired`` and ``_run`` are
        # written out here, one Python call less each (see _run).
        deadline = message.get("dl")
        if isinstance(deadline, (int, float)) and time.time() > deadline:
            self._drop(message)
            return
        reply = self.execute(message)
        if message.get("nr"):
            self._cast_done(message, reply)
            return
        try:
            self._send(sender, reply)
        except (EncodeError, MessageTooLarge) as exc:
            self._send_unencodable(sender, message, reply, exc)

    def _expired(self, message: dict[str, Any]) -> bool:
        deadline = message.get("dl")
        if isinstance(deadline, (int, float)) and time.time() > deadline:
            self._drop(message)
            return True
        return False

    def _drop(self, message: dict[str, Any]) -> None:
        self.expired += 1
        log.info("dropped an expired call to %s", messages.describe(message))

    def execute(self, message: dict[str, Any]) -> dict[str, Any]:
        """Run the call in ``message`` on this thread and return the reply message.

        Always a reply, even when an exception lands outside the call: a purge
        interrupts a thread asynchronously, and its CodePurged may arrive just
        before or after the function runs, still inside this job.
        """
        try:
            call_id = message.get("id", 0)
            try:
                path = message.get("fn")
                if "fnp" in message:
                    fn = self._shipped(message["fnp"])
                elif isinstance(path, str) and path:
                    # resolve()'s fast path written out: one Python call less.
                    module_name, dot, name = path.rpartition(".")
                    module = sys.modules.get(module_name) if dot else builtins
                    found = getattr(module, name, None) if module is not None else None
                    if found is None or not callable(found) or ":" in path:
                        found = resolve(path)
                    fn = found
                else:
                    raise NoSuchFunction(f"bad function name {path!r}")
            except NoSuchFunction as exc:
                return messages.error_reply(call_id, messages.NO_SUCH_FUNCTION, None, str(exc))
            except Exception as exc:
                kind = messages.SHIPPING if "fnp" in message else messages.REMOTE
                return messages.error_reply(call_id, kind, exc, f"{type(exc).__name__}: {exc}")
            args, kwargs = message.get("a", ()), message.get("k") or {}
            token = CURRENT_NODE.set(self._node)
            try:
                value = fn(*args, **kwargs)
            except BaseException as exc:
                # SystemExit, KeyboardInterrupt, GeneratorExit and CodePurged (a
                # purge stopping this worker) end the call too: the caller gets
                # them as a RemoteError now, never a silent wait for its timeout.
                # The worker thread goes on serving calls.
                return messages.exception_reply(call_id, exc)
            finally:
                CURRENT_NODE.reset(token)
            return {"t": "reply", "id": call_id, "ok": True, "v": value}  # messages.ok_reply
        except BaseException as exc:
            return messages.exception_reply(message.get("id", 0), exc)

    def run_local(
        self,
        message: dict[str, Any],
        deliver: Callable[[dict[str, Any]], None],
        encode: Callable[[dict[str, Any]], bytes],
    ) -> None:
        """Run a call to this node on a worker; ``deliver`` the reply as it would arrive.

        The reply goes through ``encode`` and back, so a value that cannot
        travel fails here exactly as it would between nodes.
        """

        def job() -> None:
            reply = self.execute(message)
            try:
                data = encode(reply)
            except (EncodeError, MessageTooLarge) as exc:
                text = f"the value returned by {messages.describe(message)} cannot travel: {exc}"
                data = encode(messages.error_reply(0, messages.UNENCODABLE, None, text))
            deliver(decode_frame(data, max_size=len(data)))

        self._pool.submit(job)

    @staticmethod
    def _shipped(packed: Any) -> Callable[..., Any]:
        from hotmesh._rpc.shipping import load_function

        return load_function(packed)

    def _run(self, sender: bytes, message: dict[str, Any]) -> None:
        reply = self.execute(message)
        if message.get("nr"):
            self._cast_done(message, reply)
            return
        try:
            self._send(sender, reply)
        except (EncodeError, MessageTooLarge) as exc:
            self._send_unencodable(sender, message, reply, exc)

    @staticmethod
    def _cast_done(message: dict[str, Any], reply: dict[str, Any]) -> None:
        if not reply.get("ok"):
            log.warning("cast to %s failed: %s", messages.describe(message), reply["e"]["msg"])

    def _send_unencodable(
        self, sender: bytes, message: dict[str, Any], reply: dict[str, Any], exc: Exception
    ) -> None:
        """Send what can travel of a reply that could not be encoded."""
        if not reply.get("ok") and "exc" in reply["e"]:
            # The exception object itself cannot travel: send its text only.
            del reply["e"]["exc"]
            self._send(sender, reply)
            return
        text = f"the value returned by {messages.describe(message)} cannot travel: {exc}"
        self._send(sender, messages.error_reply(reply["id"], messages.UNENCODABLE, None, text))
