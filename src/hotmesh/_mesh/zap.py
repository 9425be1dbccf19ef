"""ZAP handler and handshake watcher for a node's zmq context (socket I/O, loop thread).

The ZAP handler accepts only CURVE clients presenting the cluster's public key
and logs every refusal with the peer address. The handshake watcher logs
connections whose CURVE handshake failed before ZAP ran (a client that derived
its keys from another cookie never gets that far).
"""

from __future__ import annotations

import logging
import socket
import time
from collections import deque

import zmq
import zmq.utils.z85

log = logging.getLogger("hotmesh.mesh")

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
QUIET = 10.0  # seconds between two refusal lines about the same peer host
_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)


class RefusalLog:
    """Logs refusals, at most one line per peer host every ``QUIET`` seconds.

    A refused zmq client reconnects every 100 ms; without this its retries
    would flood the log. The next line says how many were left out.
    """

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, int]] = {}

    def refused(self, peer: str, text: str, *args: object, now: float | None = None) -> bool:
        """Log ``text % args`` unless ``peer``'s host was logged recently; True if logged."""
        now = time.monotonic() if now is None else now
        host = peer.rsplit(":", 1)[0]
        last, skipped = self._last.get(host, (-QUIET, 0))
        if now - last < QUIET:
            self._last[host] = (last, skipped + 1)
            return False
        if len(self._last) > 1024:
            self._last.clear()
        self._last[host] = (now, 0)
        suffix = f" ({skipped} more refusals since the last line)" if skipped else ""
        log.warning(text + suffix, *args)
        return True


class ZapHandler:
    """Answers ZAP requests on one context: only the cluster key gets in."""

    def __init__(
        self, ctx: zmq.Context[zmq.Socket[bytes]], public_key_z85: bytes, refusals: RefusalLog
    ) -> None:
        self._key = zmq.utils.z85.decode(public_key_z85)
        self.where = ""
        self.refused = 0
        self._refusals = refusals
        self.socket = ctx.socket(zmq.ROUTER)
        self.socket.linger = 0
        self.socket.bind(ZAP_ENDPOINT)

    def drain(self) -> None:
        """Answer every queued ZAP request (call when the socket is readable)."""
        while True:
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._answer(frames)

    def _answer(self, frames: list[bytes]) -> None:
        # [routing id, b"", version, request id, domain, address, identity, mechanism, creds...]
        if len(frames) < 8:
            return
        envelope, request = frames[:2], frames[2:]
        version, request_id, _domain, address, _identity, mechanism = request[:6]
        credentials = request[6:]
        ok = mechanism == b"CURVE" and credentials[:1] == [self._key]
        if ok:
            reply = [version, request_id, b"200", b"OK", zmq.utils.z85.encode(self._key), b""]
        else:
            self.refused += 1
            peer = address.decode("ascii", "replace")
            self._refusals.refused(
                peer,
                "refused %s connection from %s on %s: its key is not the cluster key "
                "(wrong cookie?)",
                mechanism.decode("ascii", "replace"),
                peer,
                self.where,
            )
            reply = [version, request_id, b"400", b"unknown key", b"", b""]
        self.socket.send_multipart(envelope + reply)

    def close(self) -> None:
        """Close the ZAP socket."""
        self.socket.close(linger=0)


class HandshakeWatcher:
    """Logs failed CURVE handshakes on a listening socket, with the peer address.

    libzmq reports the failure without the connection's fd, so the address is
    that of the oldest accepted connection whose handshake had no outcome yet,
    read from its fd when the accept event is processed. A client with another
    cookie fails within a round trip, so its fd is often closed by then: the
    line then names only the listening endpoint ("an unknown peer").
    """

    def __init__(self, sock: zmq.Socket[bytes], refusals: RefusalLog) -> None:
        self.where = ""
        self._refusals = refusals
        self._waiting: deque[str] = deque(maxlen=256)
        self.failed = 0
        self.socket = sock.get_monitor_socket(
            zmq.EVENT_ACCEPTED | zmq.EVENT_HANDSHAKE_SUCCEEDED | _FAILED
        )
        self.socket.linger = 0

    def drain(self) -> None:
        """Process every queued monitor event (call when the socket is readable)."""
        while True:
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) != 2 or len(frames[0]) < 6:
                continue
            event = int.from_bytes(frames[0][:2], "little")
            value = int.from_bytes(frames[0][2:6], "little")
            self._event(event, value)

    def _event(self, event: int, value: int) -> None:
        if event == zmq.EVENT_ACCEPTED:
            self._waiting.append(_peer_of_fd(value))
        elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            if self._waiting:
                self._waiting.popleft()
        elif event & _FAILED:
            self.failed += 1
            peer = self._waiting.popleft() if self._waiting else "an unknown peer"
            self._refusals.refused(
                peer,
                "refused connection from %s on %s: CURVE handshake failed "
                "(wrong cookie, or not a hotmesh peer)",
                peer,
                self.where,
            )

    def close(self) -> None:
        """Close the monitor socket."""
        self.socket.close(linger=0)


def _peer_of_fd(fd: int) -> str:
    """The remote address of a connected TCP socket fd, or a placeholder."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return "an unknown peer"
    try:
        address = sock.getpeername()
    except OSError:
        return "an unknown peer"
    finally:
        sock.detach()
    if isinstance(address, tuple):
        return f"{address[0]}:{address[1]}"
    return str(address) or "an unknown peer"
