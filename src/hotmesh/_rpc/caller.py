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
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

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

    def lines_for(self, targets: list[str]) -> Sequence[Line | None]:
        """``line_for`` of each target, in one call."""
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
        self._lines_for = peers.lines_for
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
        waiter, call_id, line = self._start(target, message, timeout)
        if line is not None:
            reply = self._wait_on_line(line, waiter, target, call_id, timeout)
            if reply is not None:
                return _result(reply, target, message)
        else:
            self._wait(waiter, target, call_id, timeout)
        return _outcome(waiter, target, message, timeout)

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
        """Run ``fn`` on every target at once; ``(results, bad_nodes)`` (see ``Node.multicall``).

        The message is encoded once, with one call id for every target (a
        reply is known by its sender and id), and goes out to every peer
        before any reply is read: the sends leave in one burst, which the zmq
        I/O thread takes in one or two wake-ups instead of one per target.
        The replies are then read in target order, each on its line; those
        that come earlier wait on theirs meanwhile, at no cost.
        """
        self._check_thread()
        message = messages.call_message(0, fn, args, kwargs, timeout)
        bad: dict[str, BaseException] = {}
        calls: list[tuple[str, Waiter]] = []  # every target to wait for, in order
        remote: list[str] = []
        remote_waiters: list[Waiter] = []
        local: Waiter | None = None
        me, is_up = self.name, self._is_up
        for target in dict.fromkeys(targets):
            if self._closed:
                bad[target] = NodeStopped(me)
            elif target == me:
                local = Waiter()
                calls.append((target, local))
            elif is_up(target):
                waiter = Waiter()
                remote.append(target)
                remote_waiters.append(waiter)
                calls.append((target, waiter))
            else:
                bad[target] = NodeDown(target, f"node {target} is not connected")
        if not calls:
            return {}, bad
        with self._lock:
            if self._closed:  # close() ran since the checks above
                return {}, {**bad, **{target: NodeStopped(me) for target, _ in calls}}
            call_id = self._pending.add_each(remote, time.monotonic() + timeout, remote_waiters)
        message["id"] = call_id
        try:
            data = self._encode(message)
        except BaseException:
            with self._lock:
                for target in remote:
                    self._pending.settle(target, call_id)
            raise
        lines = self._send_each(remote, data) if remote else {}
        if local is not None:
            try:
                self._run_local(self._roundtrip(data), local.set_reply)
            except NodeStopped as exc:
                calls = [(t, w) for t, w in calls if w is not local]
                bad[me] = exc
        return self._gather(calls, call_id, lines, message, timeout, bad)

    def _send_each(self, targets: list[str], data: bytes) -> dict[str, Line]:
        """Send ``data`` to every target, on the calling thread's lines where it has
        them; return those lines (a reply comes back on the line its call took)."""
        sent: dict[str, Line] = {}
        for target, line in zip(targets, self._lines_for(targets), strict=True):
            if line is not None:
                try:
                    line.send(data)
                    sent[target] = line
                    continue
                except TransportError:
                    pass  # the shared path below still works
            self._send(target, data)
        return sent

    def _gather(
        self,
        calls: list[tuple[str, Waiter]],
        call_id: int,
        lines: dict[str, Line],
        message: dict[str, Any],
        timeout: float,
        bad: dict[str, BaseException],
    ) -> tuple[dict[str, Any], dict[str, BaseException]]:
        """Wait for every call of a multicall within one shared ``timeout``."""
        results: dict[str, Any] = {}
        monotonic = time.monotonic
        deadline = monotonic() + timeout
        for target, waiter in calls:
            line = lines.get(target)
            try:
                if line is not None:
                    reply = self._wait_on_line(
                        line, waiter, target, call_id, deadline - monotonic()
                    )
                    if reply is not None:
                        results[target] = _result(reply, target, message)
                        continue
                else:
                    self._wait(waiter, target, call_id, deadline - monotonic())
                results[target] = _outcome(waiter, target, message, timeout)
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
            pending = self._pending.settle(node, call_id)
        if pending is not None:  # else late (timed out) or not from the node we called
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

    def _start(
        self, target: str, message: dict[str, Any], timeout: float
    ) -> tuple[Waiter, int, Line | None]:
        """Register the call, encode it and send it: on this thread's line to
        ``target`` (returned: the reply comes there), else on the shared path.

        A call to this node starts running here (id 0).
        """
        if self._closed:
            raise NodeStopped(self.name)
        waiter = Waiter()
        if target == self.name:
            data = self._encode(message)
            self._run_local(self._roundtrip(data), waiter.set_reply)
            return waiter, 0, None
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
                self._pending.settle(target, call_id)
            raise
        line = self._line_for(target)
        if line is not None:
            try:
                line.send(data)
                return waiter, call_id, line
            except TransportError:
                pass  # the shared path below still works
        self._send(target, data)
        return waiter, call_id, None

    def _wait(self, waiter: Waiter, target: str, call_id: int, remaining: float) -> None:
        """Wait for a reply handed over by the I/O thread (or an error); give up in time."""
        if not waiter.wait(remaining):
            with self._lock:
                self._pending.settle(target, call_id)

    def _wait_on_line(
        self, line: Line, waiter: Waiter, target: str, call_id: int, remaining: float
    ) -> dict[str, Any] | None:
        """Read this thread's line until the reply comes, the waiter fails, or time is up."""
        decode, monotonic = self._decode, time.monotonic
        deadline = monotonic() + remaining
        while waiter.error is None:
            left = deadline - monotonic()
            if left <= 0:
                break
            try:
                data = line.recv(left if left < _SLICE else _SLICE)
            except TransportError:
                break  # closed because the node stops: close() fails the waiter
            if data is None:
                continue
            try:
                reply = decode(data)
            except (DecodeError, HotmeshError):
                continue
            if reply.get("id") != call_id or reply.get("t") != "reply":
                continue  # a late reply to an earlier call that timed out
            with self._lock:
                settled = self._pending.settle(target, call_id) is not None
            if settled:
                return reply
        with self._lock:
            self._pending.settle(target, call_id)
        return None

    def _roundtrip(self, data: bytes) -> dict[str, Any]:
        """Decode an encoded message: a local call sees copies, as a remote one would."""
        return decode_frame(data, max_size=len(data) + 1)


def _outcome(waiter: Waiter, target: str, message: dict[str, Any], timeout: float) -> Any:
    """The value the waiter got, or raise its error (CallTimeout: it got neither)."""
    # The reply (or an error) may have won the race with the timeout.
    if waiter.error is not None:
        raise waiter.error
    if waiter.reply is None:
        raise CallTimeout(
            f"call to {messages.describe(message)} on {target} timed out after {timeout:g}s"
        )
    return _result(waiter.reply, target, message)


def _result(reply: dict[str, Any], target: str, message: dict[str, Any]) -> Any:
    """The value of a reply; the function's name is worked out only for an error."""
    if reply.get("ok"):
        return reply.get("v")
    return messages.result_of(reply, target, messages.describe(message))


def _log_failed_cast(reply: dict[str, Any]) -> None:
    """A cast to this node has no caller to tell: log its failure, as a remote target does."""
    if not reply.get("ok"):
        log.warning("cast failed: %s", reply.get("e", {}).get("msg"))
