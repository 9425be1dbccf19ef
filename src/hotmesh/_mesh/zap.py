"""ZAP handler and handshake watcher for a node's zmq context (socket I/O, loop thread).

The ZAP handler accepts only CURVE clients presenting the cluster's public key
and logs every refusal with the peer address. The handshake watcher logs
connections whose CURVE handshake failed before ZAP ran (a client that derived
its keys from another cookie never gets that far), and caps the connections
still in their handshake so they cannot exhaust the node's file descriptors.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time

import zmq
import zmq.utils.z85

try:
    import resource
except ImportError:  # not POSIX
    resource = None  # type: ignore[assignment]

log = logging.getLogger("hotmesh.mesh")

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
QUIET = 10.0  # seconds between two refusal lines about the same peer host
MAX_PENDING = 256  # connections in their CURVE handshake at once, beyond which more are shut
FD_RESERVE = 128  # descriptors kept for peers and consoles
HANDSHAKE_WINDOW = 5.0  # seconds libzmq gives a handshake (the inbox's handshake_ivl)
# Plain ints: an operation between an int and one of zmq's flag members builds
# an enum value each time (several microseconds), and every connection a node
# accepts brings events.
_ACCEPTED = int(zmq.EVENT_ACCEPTED)
_HANDSHAKEN = int(zmq.EVENT_HANDSHAKE_SUCCEEDED)
_DISCONNECTED = int(zmq.EVENT_DISCONNECTED)
_FAILED = int(
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)
_NOBLOCK, _RCVMORE, _SNDMORE = int(zmq.NOBLOCK), int(zmq.RCVMORE), int(zmq.SNDMORE)
# A client with another cookie fails with a protocol error (its HELLO does not
# decrypt); "no detail" is a system error mid-handshake: the peer closed or
# the handshake outlasted HANDSHAKE_WINDOW (a redial, or nodes started
# together on a busy CPU), which is no refusal.
_REFUSED = int(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH)


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
        self._user_id = zmq.utils.z85.encode(self._key)
        self.where = ""
        self.refused = 0
        self._refusals = refusals
        self.socket = ctx.socket(zmq.ROUTER)
        self.socket.linger = 0
        self.socket.bind(ZAP_ENDPOINT)

    def drain(self) -> None:
        """Answer every queued ZAP request (call when the socket is readable)."""
        sock = self.socket
        while True:
            try:
                frames = [sock.recv(_NOBLOCK)]
                while sock.get(_RCVMORE):
                    frames.append(sock.recv(_NOBLOCK))
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
            reply = [version, request_id, b"200", b"OK", self._user_id, b""]
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
        sock = self.socket
        with contextlib.suppress(zmq.ZMQError):  # the requester is gone
            for frame in envelope:
                sock.send(frame, _NOBLOCK | _SNDMORE)
            for frame in reply[:-1]:
                sock.send(frame, _NOBLOCK | _SNDMORE)
            sock.send(reply[-1], _NOBLOCK)

    def close(self) -> None:
        """Close the ZAP socket."""
        self.socket.close(linger=0)


class HandshakeWatcher:
    """Watches connections to a listening socket until their CURVE handshake ends.

    Logs refused handshakes (a protocol or authentication failure: another
    cookie) with the peer address; handshakes cut short by a close or a
    timeout are only counted (``incomplete``). libzmq reports the failure
    without the connection's fd, so the address is that of the oldest
    accepted connection whose handshake had no outcome yet, read from its fd
    when the accept event is processed (a client with another cookie fails
    within a round trip, so its fd is often closed by then: the line then
    names only the listening endpoint, "an unknown peer").

    Caps those connections: one accepted while ``max_pending`` others are
    still in their handshake, or when its fd comes within ``fd_reserve`` of
    the process's file limit, is shut at once, so that unauthenticated
    connections can never take the descriptors peers and consoles need.
    Connections count as pending for at most ``window`` seconds (libzmq
    drops a handshake that takes longer: ``handshake_ivl``). Refusals are
    logged at most once per ``QUIET`` seconds, with the count since the last line.
    """

    def __init__(
        self,
        sock: zmq.Socket[bytes],
        refusals: RefusalLog,
        *,
        max_pending: int = MAX_PENDING,
        fd_reserve: int = FD_RESERVE,
        window: float = HANDSHAKE_WINDOW,
    ) -> None:
        self.where = ""
        self._refusals = refusals
        self._pending: dict[int, tuple[str, float]] = {}  # fd -> (peer, accepted at), oldest first
        self.max_pending = max_pending
        self.fd_reserve = fd_reserve
        self.window = window
        self.failed = 0
        self.incomplete = 0  # handshakes cut short (closed, timed out): not refusals
        self.capped = 0
        self._capped_unlogged = 0
        self._capped_logged_at = -QUIET
        self.socket = sock.get_monitor_socket(_ACCEPTED | _HANDSHAKEN | _FAILED | _DISCONNECTED)
        self.socket.linger = 0

    @property
    def pending(self) -> int:
        """Accepted connections whose handshake has no outcome yet (approximately)."""
        return len(self._pending)

    def drain(self) -> None:
        """Process every queued monitor event (call when the socket is readable)."""
        events: list[tuple[int, int]] = []
        sock = self.socket
        while True:
            try:
                frames = [sock.recv(_NOBLOCK)]
                while sock.get(_RCVMORE):
                    frames.append(sock.recv(_NOBLOCK))
            except zmq.Again:
                break
            if len(frames) != 2 or len(frames[0]) < 6:
                continue
            events.append(
                (int.from_bytes(frames[0][:2], "little"), int.from_bytes(frames[0][2:6], "little"))
            )
        # An fd closed later in this batch may already be another connection's.
        closed = {value for event, value in events if event == _DISCONNECTED}
        now = time.monotonic()
        limit = _fd_limit() - self.fd_reserve if events else 0
        for event, value in events:
            self._event(event, value, closed, now, limit)

    def _event(self, event: int, value: int, closed: set[int], now: float, limit: int) -> None:
        if event == _ACCEPTED:
            if value in closed:
                return
            self._expire(now)
            if len(self._pending) >= self.max_pending or value >= limit:
                self._cap(value, now)
                return
            self._pending[value] = (_peer_of_fd(value), now)
        elif event == _HANDSHAKEN:
            if self._pending:
                del self._pending[next(iter(self._pending))]
        elif event == _DISCONNECTED:
            self._pending.pop(value, None)
        elif event & _FAILED and not event & _REFUSED:
            self.incomplete += 1
        elif event & _FAILED:
            self.failed += 1
            peer = next(iter(self._pending.values()))[0] if self._pending else "an unknown peer"
            self._refusals.refused(
                peer,
                "refused connection from %s on %s: CURVE handshake failed "
                "(wrong cookie, or not a hotmesh peer)",
                peer,
                self.where,
            )

    def _expire(self, now: float) -> None:
        while self._pending:
            fd = next(iter(self._pending))
            if now - self._pending[fd][1] <= self.window:
                return
            del self._pending[fd]

    def _cap(self, fd: int, now: float) -> None:
        peer = _peer_of_fd(fd)
        _shut(fd)
        self.capped += 1
        self._capped_unlogged += 1
        if now - self._capped_logged_at >= QUIET:
            log.warning(
                "refused %d connection(s) on %s (latest from %s): %d wait for their CURVE "
                "handshake (cap %d) or file descriptors run low (limit %d, %d kept for "
                "peers and consoles)",
                self._capped_unlogged,
                self.where,
                peer,
                len(self._pending),
                self.max_pending,
                _fd_limit(),
                self.fd_reserve,
            )
            self._capped_unlogged = 0
            self._capped_logged_at = now

    def close(self) -> None:
        """Close the monitor socket."""
        self.socket.close(linger=0)


def raise_fd_limit() -> tuple[int, int]:
    """Raise this process's soft limit of open files to its hard limit; return both.

    A node holds about three descriptors per peer, and callers' lines on top:
    the common soft default of 1,024 runs out near 300 peers.
    """
    if resource is None:
        return (-1, -1)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft, hard


def _fd_limit() -> int:
    if resource is None:
        return 1 << 30
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft if soft != resource.RLIM_INFINITY else 1 << 30


def _shut(fd: int) -> None:
    """Shut a connection libzmq owns (it sees the end and closes the fd itself)."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.detach()


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
