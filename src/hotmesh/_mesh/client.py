"""Client connections to a node from a process that is not a mesh member (socket I/O).

The console client and the CLI use ``Connection``: a CURVE DEALER keyed from the
cookie, authenticated by the node exactly like a peer. ``call`` makes a plain
remote call over it; ``resolve`` turns a node name into an endpoint.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
import time
from collections.abc import Callable
from typing import Any

import zmq

from hotmesh._errors import AuthError, DecodeError, MessageTooLarge, NoSuchNode, TransportError
from hotmesh._paths import full_node_name
from hotmesh._wire.frames import DEFAULT_MAX_MESSAGE_SIZE, decode_frame, encode_frame

_HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)
_ids = itertools.count(1)


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
        public, secret = curve_keypair(load_cookie(cookie))
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
        self._monitor = self._sock.get_monitor_socket(_HANDSHAKE_FAILED)
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
                self._check_handshake()
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

    def _check_handshake(self) -> None:
        while True:
            try:
                frames = self._monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            event = int.from_bytes(frames[0][:2], "little") if frames and frames[0] else 0
            if event & _HANDSHAKE_FAILED:
                raise AuthError(
                    f"{self.endpoint} refused this client: CURVE handshake failed "
                    "(is this the cluster's cookie?)"
                )


def call(conn: Connection, fn: str, *args: Any, timeout: float = 5.0, **kwargs: Any) -> Any:
    """Run ``fn(*args, **kwargs)`` on the node behind ``conn`` and return its value.

    Other messages that arrive meanwhile are kept in ``conn.backlog`` (``recv``
    returns them first).

    Raises:
        CallTimeout: no reply within ``timeout``.
        RemoteError, NoSuchFunction: as for ``Node.call``.
    """
    # The message helpers belong to the rpc layer; imported here, at call time,
    # so that clients share the exact call/reply format with nodes.
    from hotmesh._errors import CallTimeout
    from hotmesh._rpc import messages

    call_id = next(_ids) + (os.getpid() << 32)
    message = messages.call_message(call_id, fn, args, kwargs, timeout)
    conn.send(message)
    reply = _await_reply(conn, lambda m: m.get("t") == "reply" and m.get("id") == call_id, timeout)
    if reply is None:
        raise CallTimeout(f"call to {fn} on {conn.endpoint} timed out after {timeout:g}s")
    return messages.result_of(reply, conn.endpoint, messages.describe(message))


def ping(conn: Connection, timeout: float = 2.0) -> dict[str, Any] | None:
    """Ask the node for a pong: ``{"node": name, "inc": incarnation}``, or None on timeout."""
    conn.send({"t": "ping"})
    return _await_reply(conn, lambda m: m.get("t") == "pong", timeout)


def _await_reply(
    conn: Connection, is_it: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any] | None:
    """The first message ``is_it`` accepts within ``timeout``, or None.

    Messages that arrive meanwhile are kept, in order, in ``conn.backlog``.
    """
    deadline = time.monotonic() + timeout
    held: list[dict[str, Any]] = []
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            message = conn.recv(remaining)
            if message is None:
                return None
            if is_it(message):
                return message
            held.append(message)
    finally:
        conn.backlog.extend(held)
    return None


def resolve(target: str, *, cookie: str | None = None, timeout: float = 2.0) -> str:
    """The endpoint of ``target``: an endpoint as is, a local node from the registry,
    else whatever a local node knows of that mesh member.

    Raises:
        NoSuchNode: no local node knows ``target``.
    """
    from hotmesh._mesh import registry

    if "://" in target:
        return target
    entry = registry.lookup(target)
    if entry is not None:
        return entry.endpoint
    name = full_node_name(target)
    for local in registry.entries():
        with Connection(local.endpoint, cookie) as conn, contextlib.suppress(Exception):
            endpoint = call(conn, "hotmesh._node.endpoint_of", name, timeout=timeout)
            if isinstance(endpoint, str):
                return endpoint
    raise NoSuchNode(
        f"no node {name} on this host, and no local node knows it; "
        "give its endpoint (tcp://host:port) instead"
    )
