"""Call lines: one DEALER per (calling thread, peer), read by the calling thread (sockets).

A thread that calls a peer sends on its own line and waits for the reply on
that same line, so the reply reaches it without passing through the node's
I/O thread (one thread hand-off less per call). The peer answers through its
inbox, from its worker thread. Lines are created on first use, capped per
node (lines of threads that ended are closed to make room), and closed when
the node stops.
"""

from __future__ import annotations

import itertools
import threading
import time

import zmq

from hotmesh._errors import TransportError
from hotmesh._mesh.transport import line_identity

_NOBLOCK, _RCVTIMEO = int(zmq.NOBLOCK), int(zmq.RCVTIMEO)
_send = zmq.backend.Socket.send  # pyzmq's own, without its Python wrapper


class Line:
    """One thread's DEALER to one peer incarnation (only its owner thread uses it)."""

    __slots__ = ("endpoint", "incarnation", "lock", "owner", "rcvtimeo", "socket")

    def __init__(self, sock: zmq.Socket[bytes], endpoint: str, incarnation: str) -> None:
        self.socket = sock
        self.endpoint = endpoint
        self.incarnation = incarnation
        self.owner = threading.current_thread()
        # Held by the owner while it uses the socket; taken by close_all.
        self.lock = threading.Lock()
        self.rcvtimeo = -1  # the socket's receive timeout (ms) as last set

    def send(self, data: bytes) -> None:
        """Queue one frame for the peer (never blocks; owner thread only).

        Raises:
            TransportError: the line cannot take it (peer congested, or line closed).
        """
        with self.lock:
            try:
                _send(self.socket, data, _NOBLOCK)
            except zmq.ZMQError as exc:
                raise TransportError(f"cannot send to {self.endpoint}: {exc}") from exc

    def recv(self, timeout: float) -> bytes | None:
        """The next frame from the peer, or None after ``timeout`` seconds (owner only).

        Raises:
            TransportError: the line was closed (the node stops).
        """
        with self.lock:
            try:
                sock = self.socket
                if sock.closed:
                    raise zmq.ZMQError(zmq.ENOTSOCK)
                # A blocking receive with a timeout: one call into libzmq (and
                # one GIL release) per reply, where a poll then a receive took two.
                ms = max(0, int(timeout * 1000))
                if ms != self.rcvtimeo:
                    sock.setsockopt(_RCVTIMEO, ms)
                    self.rcvtimeo = ms
                return sock.recv()
            except zmq.Again:
                return None
            except zmq.ZMQError as exc:
                raise TransportError(f"line to {self.endpoint} closed: {exc}") from exc


_fan_out = threading.local()


def call_each_peer_once() -> None:
    """Mark the calling thread as a fan-out worker: its calls take the shared path.

    A line pays for itself in a thread that calls a peer again and again. A
    fan-out pool's thread (a rolling upgrade's, ``run_on``'s) calls each peer
    about once, and a line would cost a CURVE handshake on both sides for that
    one call: a rollout of 16 nodes at once made 16 of them at the moment every
    node began to upgrade, beside the nodes' clients.
    """
    _fan_out.marked = True


class CallLines:
    """The call lines of one node, per thread and peer.

    Args:
        ctx: the node's zmq context.
        name, incarnation: this node, for the lines' routing ids.
        keys: the cluster's CURVE ``(public, secret)`` keys.
        cap: most lines open at once; beyond it ``line_for`` returns None and
            the caller uses the node's shared path.
    """

    def __init__(
        self,
        ctx: zmq.Context[zmq.Socket[bytes]],
        name: str,
        incarnation: str,
        keys: tuple[bytes, bytes],
        cap: int,
    ) -> None:
        self._ctx = ctx
        self._name = name
        self._incarnation = incarnation
        self._public, self._secret = keys
        self._cap = cap
        self._local = threading.local()
        self._all: list[Line] = []
        self._lock = threading.Lock()
        self._serial = itertools.count(1)
        self._closed = False

    def line_for(self, peer: str, endpoint: str, incarnation: str) -> Line | None:
        """This thread's line to ``peer`` at that incarnation, opened if needed
        (None for a fan-out worker: ``call_each_peer_once``)."""
        if getattr(_fan_out, "marked", False):
            return None
        lines: dict[str, Line] | None = getattr(self._local, "lines", None)
        if lines is None:
            lines = self._local.lines = {}
        line = lines.get(peer)
        if line is not None and line.incarnation == incarnation and line.endpoint == endpoint:
            return line
        if line is not None:
            self._discard(lines.pop(peer))
        with self._lock:
            if len(self._all) >= self._cap:
                self._sweep()
            if self._closed or len(self._all) >= self._cap:
                return None
            sock = self._ctx.socket(zmq.DEALER)
            sock.linger = 0
            sock.identity = line_identity(self._name, self._incarnation, next(self._serial))
            sock.curve_serverkey = self._public
            sock.curve_publickey = self._public
            sock.curve_secretkey = self._secret
            sock.connect(endpoint)
            line = Line(sock, endpoint, incarnation)
            self._all.append(line)
        lines[peer] = line
        return line

    def lines_for(self, peers: list[tuple[str, str | None, str | None]]) -> list[Line | None]:
        """``line_for`` of each ``(peer, endpoint, incarnation)``; None where the
        peer is not known (no endpoint or incarnation) or no line can be had."""
        lines: dict[str, Line] | None = getattr(self._local, "lines", None)
        if lines is None or getattr(_fan_out, "marked", False):
            lines = {}
        found: list[Line | None] = []
        for peer, endpoint, incarnation in peers:
            line = lines.get(peer)
            if line is None or line.incarnation != incarnation or line.endpoint != endpoint:
                if not (endpoint and incarnation):
                    line = None
                else:
                    line = self.line_for(peer, endpoint, incarnation)
            found.append(line)
        return found

    def close_all(self, timeout: float = 1.0) -> None:
        """Close every line; waits up to ``timeout`` for lines in use (idempotent)."""
        with self._lock:
            self._closed = True
            lines, self._all = self._all, []
        deadline = time.monotonic() + timeout
        for line in lines:
            # A line's owner holds its lock while waiting on it, for at most
            # one poll slice once its calls have failed.
            locked = line.lock.acquire(timeout=max(0.0, deadline - time.monotonic()))
            try:
                line.socket.close(linger=0)
            finally:
                if locked:
                    line.lock.release()

    @property
    def closed(self) -> bool:
        """Whether ``close_all`` ran."""
        return self._closed

    def _sweep(self) -> None:
        """Close the lines of threads that ended (under ``self._lock``)."""
        dead = [line for line in self._all if not line.owner.is_alive()]
        for line in dead:
            self._all.remove(line)
            line.socket.close(linger=0)

    def _discard(self, line: Line) -> None:
        with self._lock:
            if line in self._all:
                self._all.remove(line)
        with line.lock:
            line.socket.close(linger=0)
