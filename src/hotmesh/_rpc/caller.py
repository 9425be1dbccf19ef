"""The caller side of remote calls: call, cast, multicall (threads; sockets via ``Peers``).

A call goes out on the calling thread's own line and the same thread reads its
reply there; node-down and stop notices reach it through its ``Waiter``. When
no line is available, the call goes out on the shared per-peer path and the
node's I/O thread hands the reply over. Nothing here touches a socket: the
node gives one ``Peers`` object (``hotmesh._node.router.Router``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Protocol

from hotmesh._errors import (
    CallTimeout,
    DecodeError,
    HotmeshError,
    NodeDown,
    NodeStopped,
    TransportError,
)
from hotmesh._rpc import messages
from hotmesh._rpc.pending import PendingCalls
from hotmesh._wire.frames import decode_frame

log = logging.getLogger("hotmesh.rpc")

_SLICE = 0.05  # a caller waiting on its line looks at its waiter this often


class Line(Protocol):
    """A calling thread's own connection to one peer (``hotmesh._mesh.lines.Line``)."""

    def send(self, data: bytes) -> None: ...

    def recv(self, timeout: float) -> bytes | None: ...


Deliver = Callable[[dict[str, Any]], None]


class Peers(Protocol):
    """The node's side of a call: who is up, how bytes reach them, the codec, local runs."""

    def is_up(self, target: str) -> bool:
        """Whether ``target`` is a connected peer."""
        ...

    def line_for(self, target: str) -> Line | None:
        """The calling thread's own line to ``target`` (None: use ``send``)."""
        ...

    def send(self, target: str, data: bytes) -> None:
        """Send a frame to ``target`` on the shared per-peer path."""
        ...

    def encode(self, message: dict[str, Any]) -> bytes:
        """One message as a frame (the node's size limit applies)."""
        ...

    def decode(self, data: bytes) -> dict[str, Any]:
        """One frame as a message (the node's size limit applies)."""
        ...

    def run_local(self, message: dict[str, Any], deliver: Deliver) -> None:
        """Run a call to this node on a worker; ``deliver`` its reply."""
        ...

    def on_io_thread(self) -> bool:
        """Whether the calling thread is the node's I/O thread."""
        ...


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

    def __init__(self, name: str, peers: Peers) -> None:
        self.name = name
        self.peers = peers
        # Bound once: the hot path pays no attribute lookup on ``peers``.
        self._line_for = peers.line_for
        self._decode = peers.decode
        self._encode = peers.encode
        self._send = peers.send
        self._is_up = peers.is_up
        self._run_local = peers.run_local
        self._on_io_thread = peers.on_io_thread
        self._pending: PendingCalls[Waiter] = PendingCalls()
        self._lock = threading.Lock()
        self._closed = False

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
        started = self._start(target, message, timeout)
        return self._finish(target, message, started, timeout, timeout)

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
        if self._closed:
            raise NodeStopped(self.name)
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
        prepared: list[tuple[str, _Started, bytes, Line | None]] = []
        bad: dict[str, BaseException] = {}
        try:
            for target in dict.fromkeys(targets):
                try:
                    prepared.append((target, *self._prepare(target, dict(message), timeout)))
                except (NodeDown, NodeStopped) as exc:
                    bad[target] = exc
        except BaseException:
            with self._lock:
                for _, begun, _, _ in prepared:
                    self._pending.settle(begun.call_id)
            raise
        # Every message is ready before the first leaves: the sends go out in
        # one burst, which the zmq I/O thread takes in one or two wake-ups
        # instead of one per target.
        started: list[tuple[str, _Started]] = []
        for target, begun, data, line in prepared:
            started.append((target, self._transmit(target, begun, data, line)))
        deadline = time.monotonic() + timeout
        results: dict[str, Any] = {}
        for target, begun in started:
            try:
                remaining = deadline - time.monotonic()
                results[target] = self._finish(target, message, begun, remaining, timeout)
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
        """Fail every call still waiting, and every later one, with NodeStopped (the node stops)."""
        with self._lock:
            self._closed = True
            lost = self._pending.expire(float("inf"))
        for pending in lost:
            pending.waiter.set_error(
                NodeStopped(self.name, f"node {self.name} stopped during the call")
            )

    # ---- internals -----------------------------------------------------
    def _check_thread(self) -> None:
        if self._on_io_thread():
            raise HotmeshError(
                "a blocking call from the node's I/O thread would stall it; "
                "hand the work to another thread"
            )

    def _start(self, target: str, message: dict[str, Any], timeout: float) -> _Started:
        return self._transmit(target, *self._prepare(target, message, timeout))

    def _prepare(
        self, target: str, message: dict[str, Any], timeout: float
    ) -> tuple[_Started, bytes, Line | None]:
        """Register the call, encode it, find this thread's line to ``target``.

        A call to this node starts running here.
        """
        if self._closed:
            raise NodeStopped(self.name)
        waiter = Waiter()
        if target == self.name:
            data = self._encode(message)
            self._run_local(self._roundtrip(data), waiter.set_reply)
            return _Started(waiter, 0, None), b"", None
        if not self._is_up(target):
            raise NodeDown(target, f"node {target} is not connected")
        with self._lock:
            if self._closed:  # close() ran since the check above
                raise NodeStopped(self.name)
            call_id = self._pending.add(target, time.monotonic() + timeout, waiter)
        message["id"] = call_id
        try:
            data = self._encode(message)
        except BaseException:
            with self._lock:
                self._pending.settle(call_id)
            raise
        return _Started(waiter, call_id, None), data, self._line_for(target)

    def _transmit(self, target: str, started: _Started, data: bytes, line: Line | None) -> _Started:
        """Send a prepared call on ``line``, else on the shared path."""
        if not started.call_id:
            return started  # a call to this node, already running
        if line is not None:
            try:
                line.send(data)
                return started._replace(line=line)
            except TransportError:
                pass  # the shared path below still works
        self._send(target, data)
        return started

    def _finish(
        self,
        target: str,
        message: dict[str, Any],
        started: _Started,
        remaining: float,
        timeout: float,
    ) -> Any:
        waiter, call_id = started.waiter, started.call_id
        if started.line is not None:
            reply = self._wait_on_line(started.line, waiter, call_id, remaining)
            if reply is not None:
                return _result(reply, target, message)
        elif waiter.wait(remaining):
            pass
        else:
            with self._lock:
                self._pending.settle(call_id)
        # The reply (or an error) may have won the race with the timeout.
        if waiter.error is None and waiter.reply is None:
            raise CallTimeout(
                f"call to {messages.describe(message)} on {target} timed out after {timeout:g}s"
            )
        if waiter.error is not None:
            raise waiter.error
        assert waiter.reply is not None
        return _result(waiter.reply, target, message)

    def _wait_on_line(
        self, line: Line, waiter: Waiter, call_id: int, remaining: float
    ) -> dict[str, Any] | None:
        """Read this thread's line until the reply comes, the waiter fails, or time is up."""
        decode, monotonic = self._decode, time.monotonic
        deadline = monotonic() + remaining
        while waiter.error is None:
            left = deadline - monotonic()
            if left <= 0:
                break
            try:
                data = line.recv(min(left, _SLICE))
            except TransportError:
                break  # closed because the node stops: close() fails the waiter
            if data is None:
                continue
            try:
                reply = decode(data)
            except (DecodeError, HotmeshError):
                continue
            if reply.get("t") != "reply" or reply.get("id") != call_id:
                continue  # a late reply to an earlier call that timed out
            with self._lock:
                settled = self._pending.settle(call_id) is not None
            if settled:
                return reply
        with self._lock:
            self._pending.settle(call_id)
        return None

    def _roundtrip(self, data: bytes) -> dict[str, Any]:
        """Decode an encoded message: a local call sees copies, as a remote one would."""
        return decode_frame(data, max_size=len(data) + 1)


def _result(reply: dict[str, Any], target: str, message: dict[str, Any]) -> Any:
    """The value of a reply; the function's name is worked out only for an error."""
    if reply.get("ok"):
        return reply.get("v")
    return messages.result_of(reply, target, messages.describe(message))


def _log_failed_cast(reply: dict[str, Any]) -> None:
    """A cast to this node has no caller to tell: log its failure, as a remote target does."""
    if not reply.get("ok"):
        log.warning("cast failed: %s", reply.get("e", {}).get("msg"))


class _Started(NamedTuple):
    """A call sent: whom to wait on, its id, and the line its reply comes on (if any)."""

    waiter: Waiter
    call_id: int
    line: Line | None
