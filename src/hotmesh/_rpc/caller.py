"""The caller side of remote calls: call, cast, multicall (threads; sockets via callables).

Calls block the calling thread on a per-call lock; replies and node-down
notices arrive on the I/O thread and release it. Nothing here touches a socket:
the node gives ``send`` (hand an encoded frame to the I/O thread) and ``is_up``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from hotmesh._errors import CallTimeout, HotmeshError, NodeDown
from hotmesh._rpc import messages
from hotmesh._rpc.pending import PendingCalls

Encode = Callable[[dict[str, Any]], bytes]
Send = Callable[[str, bytes], None]
log = logging.getLogger("hotmesh.rpc")

RunLocal = Callable[[dict[str, Any], Callable[[dict[str, Any]], None]], None]


class Waiter:
    """One caller blocked until its reply or error arrives (a lock released once)."""

    __slots__ = ("_lock", "error", "reply")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self.reply: dict[str, Any] | None = None
        self.error: BaseException | None = None

    def set_reply(self, reply: dict[str, Any]) -> None:
        """Deliver the reply (exactly once)."""
        self.reply = reply
        self._lock.release()

    def set_error(self, error: BaseException) -> None:
        """Deliver an error instead of a reply (exactly once)."""
        self.error = error
        self._lock.release()

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True once settled."""
        return self._lock.acquire(timeout=max(0.0, timeout))


class Caller:
    """call / cast / multicall for one node."""

    def __init__(
        self,
        name: str,
        *,
        encode: Encode,
        send: Send,
        is_up: Callable[[str], bool],
        run_local: RunLocal,
        on_io_thread: Callable[[], bool],
    ) -> None:
        self.name = name
        self._encode = encode
        self._send = send
        self._is_up = is_up
        self._run_local = run_local
        self._on_io_thread = on_io_thread
        self._pending: PendingCalls[Waiter] = PendingCalls()
        self._lock = threading.Lock()

    # ---- public operations ---------------------------------------------
    def call(
        self,
        target: str,
        fn: str | Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        timeout: float,
    ) -> Any:
        """Run ``fn`` on ``target`` and return its value (see ``Node.call``)."""
        self._check_thread()
        message = messages.call_message(0, fn, args, kwargs, timeout)
        waiter, call_id = self._start(target, message, timeout)
        return self._finish(target, message, waiter, call_id, timeout, timeout)

    def cast(
        self,
        target: str,
        fn: str | Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        timeout: float,
    ) -> None:
        """Ask ``target`` to run ``fn`` without waiting for the outcome."""
        message = messages.call_message(0, fn, args, kwargs, timeout, reply=False)
        data = self._encode(message)
        if target == self.name:
            self._run_local(self._roundtrip(data), _log_failed_cast)
        elif not self._is_up(target):
            raise NodeDown(target)
        else:
            self._send(target, data)

    def multicall(
        self,
        targets: Iterable[str],
        fn: str | Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        timeout: float,
    ) -> tuple[dict[str, Any], dict[str, BaseException]]:
        """Run ``fn`` on every target at once; ``(results, bad_nodes)`` (see ``Node.multicall``)."""
        self._check_thread()
        message = messages.call_message(0, fn, args, kwargs, timeout)
        started: list[tuple[str, Waiter, int]] = []
        bad: dict[str, BaseException] = {}
        for target in dict.fromkeys(targets):
            try:
                started.append((target, *self._start(target, dict(message), timeout)))
            except NodeDown as exc:
                bad[target] = exc
        deadline = time.monotonic() + timeout
        results: dict[str, Any] = {}
        for target, waiter, call_id in started:
            try:
                remaining = deadline - time.monotonic()
                results[target] = self._finish(target, message, waiter, call_id, remaining, timeout)
            except HotmeshError as exc:
                bad[target] = exc
        return results, bad

    # ---- events from the I/O thread -------------------------------------
    def on_reply(self, node: str, reply: dict[str, Any]) -> None:
        """A reply arrived from ``node``; release its caller."""
        call_id = reply.get("id")
        if not isinstance(call_id, int):
            return
        with self._lock:
            pending = self._pending.get(call_id)
            if pending is None or pending.node != node:
                return  # late (timed out) or not from the node we called
            self._pending.settle(call_id)
        pending.waiter.set_reply(reply)

    def node_down(self, node: str) -> None:
        """``node`` went down: every call to it fails with NodeDown."""
        with self._lock:
            lost = self._pending.node_down(node)
        for pending in lost:
            pending.waiter.set_error(NodeDown(node, f"node {node} went down during the call"))

    def close(self) -> None:
        """Fail every call still waiting (the node stops)."""
        with self._lock:
            lost = self._pending.expire(float("inf"))
        for pending in lost:
            pending.waiter.set_error(NodeDown(pending.node, "this node stopped"))

    # ---- internals -----------------------------------------------------
    def _check_thread(self) -> None:
        if self._on_io_thread():
            raise HotmeshError(
                "a blocking call from the node's I/O thread would stall it; "
                "hand the work to another thread"
            )

    def _start(self, target: str, message: dict[str, Any], timeout: float) -> tuple[Waiter, int]:
        waiter = Waiter()
        if target == self.name:
            data = self._encode(message)
            self._run_local(self._roundtrip(data), waiter.set_reply)
            return waiter, 0
        if not self._is_up(target):
            raise NodeDown(target, f"node {target} is not connected")
        with self._lock:
            call_id = self._pending.add(target, time.monotonic() + timeout, waiter)
        message["id"] = call_id
        try:
            data = self._encode(message)
        except BaseException:
            with self._lock:
                self._pending.settle(call_id)
            raise
        self._send(target, data)
        return waiter, call_id

    def _finish(
        self,
        target: str,
        message: dict[str, Any],
        waiter: Waiter,
        call_id: int,
        remaining: float,
        timeout: float,
    ) -> Any:
        if not waiter.wait(remaining):
            with self._lock:
                self._pending.settle(call_id)
            # The reply may have won the race with the timeout.
            if not waiter.wait(0):
                raise CallTimeout(
                    f"call to {messages.describe(message)} on {target} timed out after {timeout:g}s"
                )
        if waiter.error is not None:
            raise waiter.error
        assert waiter.reply is not None
        return messages.result_of(waiter.reply, target, messages.describe(message))

    def _roundtrip(self, data: bytes) -> dict[str, Any]:
        """Decode an encoded message: a local call sees copies, as a remote one would."""
        from hotmesh._wire.frames import decode_frame

        return decode_frame(data, max_size=len(data) + 1)


def _log_failed_cast(reply: dict[str, Any]) -> None:
    """A cast to this node has no caller to tell: log its failure, as a remote target does."""
    if not reply.get("ok"):
        log.warning("cast failed: %s", reply.get("e", {}).get("msg"))
