"""Client connections to a node from a process that is not a mesh member (socket I/O).

The console client and the CLI use ``Connection``: a CURVE DEALER keyed from the
cookie, authenticated by the node exactly like a peer. Remote calls and pings
over it, and finding a node's endpoint by name, are in ``hotmesh._rpc.client_calls``.
"""

from __future__ import annotations

import collections
import contextlib
import time
from typing import Any

import zmq

from hotmesh._errors import AuthError, DecodeError, MessageTooLarge, TransportError
from hotmesh._wire.frames import DEFAULT_MAX_MESSAGE_SIZE, decode_frame, encode_frame

_HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)
_CONNECTED, _DISCONNECTED = int(zmq.EVENT_HANDSHAKE_SUCCEEDED), int(zmq.EVENT_DISCONNECTED)
_WATCHED = _HANDSHAKE_FAILED | _CONNECTED | _DISCONNECTED


class Connection:
    """A client's connection to one node (not thread-safe: one thread uses it).

    Messages sent here reach the node's ``register_handler`` handlers (and its
    built-in ``call`` and ``ping``); the node answers with ``send_to``.

    Args:
        endpoint: the node's endpoint, e.g. ``tcp://127.0.0.1:7001``.
        cookie: the cluster cookie (None: ``load_cookie()``'s usual lookup).
        identity: routing id to present (default: one chosen by zmq); a client
            that reconnects with the same identity takes over its old connection.
        max_message_size: larger frames are refused when sent and dropped when received.

    Raises:
        AuthError: CURVE is unavailable.
        CookieError: no usable cookie.
    """

    def __init__(
        self,
        endpoint: str,
        cookie: str | None = None,
        *,
        identity: bytes | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        from hotmesh._mesh.cookie import curve_keypair, load_cookie, require_curve

        require_curve()
        if identity is not None and (not identity or identity.startswith((b"@", b"\0"))):
            raise ValueError("a client identity must be non-empty and not start with '@' or NUL")
        public, secret = curve_keypair(load_cookie(cookie, create=False))
        self.endpoint = endpoint
        self.max_message_size = max_message_size
        self.backlog: collections.deque[dict[str, Any]] = collections.deque()
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.linger = 0
        self._sock.sndtimeo = 5000
        self._sock.curve_serverkey = public
        self._sock.curve_publickey = public
        self._sock.curve_secretkey = secret
        if identity is not None:
            self._sock.identity = identity
        self._monitor = self._sock.get_monitor_socket(_WATCHED)
        self._gone_since: float | None = None  # the node closed our connection then
        self._sock.connect(endpoint)
        self._poller = zmq.Poller()
        self._poller.register(self._sock, zmq.POLLIN)
        self._poller.register(self._monitor, zmq.POLLIN)
        self.closed = False

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send(self, message: dict[str, Any]) -> None:
        """Send one message (queued until the connection is up).

        Raises:
            EncodeError, MessageTooLarge: the message cannot travel.
            TransportError: the connection is closed or stays congested for 5 s.
        """
        data = encode_frame(message, max_size=self.max_message_size)
        self.send_raw(data)

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (tests use it to send malformed frames)."""
        if self.closed:
            raise TransportError(f"connection to {self.endpoint} is closed")
        try:
            self._sock.send(data)
        except zmq.Again as exc:
            raise TransportError(f"{self.endpoint} does not take messages") from exc

    def recv(self, timeout: float) -> dict[str, Any] | None:
        """The next message from the node, or None after ``timeout`` seconds.

        Frames that cannot be decoded are skipped.

        Raises:
            AuthError: the node refused this client's key (wrong cookie).
        """
        if self.backlog:
            return self.backlog.popleft()
        deadline = time.monotonic() + timeout
        while not self.closed:
            remaining = deadline - time.monotonic()
            events = dict(self._poller.poll(max(0, int(remaining * 1000))))
            if self._monitor in events:
                self._check_monitor()
            if self._sock in events:
                with contextlib.suppress(DecodeError, MessageTooLarge):
                    data = self._sock.recv(zmq.NOBLOCK)
                    return decode_frame(data, max_size=self.max_message_size)
            if remaining <= 0:
                return None
        return None

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self._sock.disable_monitor()
        self._monitor.close(linger=0)
        self._sock.close(linger=0)
        self._ctx.term()

    def gone_for(self) -> float:
        """Seconds since the node closed this connection without a new one coming up
        (libzmq redials at once; a node alive answers within milliseconds), else 0.0.
        Kept up to date by ``recv``."""
        since = self._gone_since
        return 0.0 if since is None else time.monotonic() - since

    def _check_monitor(self) -> None:
        while True:
            try:
                frames = self._monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            event = int.from_bytes(frames[0][:2], "little") if frames and frames[0] else 0
            if event == _DISCONNECTED:
                if self._gone_since is None:
                    self._gone_since = time.monotonic()
                continue
            if event == _CONNECTED:
                self._gone_since = None
                continue
            if event & _HANDSHAKE_FAILED:
                raise AuthError(
                    f"{self.endpoint} refused this client: CURVE handshake failed "
                    "(is this the cluster's cookie?)"
                )
