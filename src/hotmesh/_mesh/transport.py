"""The mesh transport: a CURVE ROUTER inbox plus one DEALER per peer (socket I/O).

Methods run on the node's I/O thread, except ``send`` and ``reply`` (any thread:
those sockets are used under a lock, which libzmq allows as a mutex is a full
memory barrier), ``receive`` (the thread reading the inbox: the leader of the
node's worker pool, not the I/O thread) and ``open``/``terminate``. Frames come
from ``hotmesh._wire.frames``; undecodable ones (garbage, truncated, oversized,
unknown version) are dropped and logged.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import zmq

from hotmesh._errors import DecodeError, MessageTooLarge, TransportError
from hotmesh._mesh.iothread import IOThread
from hotmesh._mesh.zap import (
    HANDSHAKE_WINDOW,
    HandshakeWatcher,
    RefusalLog,
    ZapHandler,
    raise_fd_limit,
)
from hotmesh._tick import DEFAULT, Tick
from hotmesh._wire.frames import decode_frame

log = logging.getLogger("hotmesh.mesh")

Message = tuple[bytes, dict[str, Any]]
RECEIVE_BUDGET = 256  # most messages one ``receive`` reads (1 when signalled)
_NOBLOCK, _EVENTS, _POLLIN = int(zmq.NOBLOCK), int(zmq.EVENTS), int(zmq.POLLIN)
_poll = zmq.zmq_poll
_SNDMORE = int(zmq.SNDMORE)
# pyzmq's own send: the Python method of zmq.Socket above it only adds options
# (routing_id, group) that a ROUTER never uses, a Python call per frame.
_send = zmq.backend.Socket.send
_DISCONNECTED = int(zmq.EVENT_DISCONNECTED)
_HANDSHAKEN = int(zmq.EVENT_HANDSHAKE_SUCCEEDED)
_CONNECT_FAILED = int(zmq.EVENT_CLOSED)  # a connection attempt that failed
_LINK_EVENTS = _HANDSHAKEN | _DISCONNECTED | _CONNECT_FAILED  # what a link's monitor reports
# A handshake the other end refused or could not read (another cookie, not a hotmesh node).
_HANDSHAKE_FAILED = (
    int(zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL),
    int(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL),
    int(zmq.EVENT_HANDSHAKE_FAILED_AUTH),
)
_REFUSAL_EVENTS = _HANDSHAKE_FAILED[0] | _HANDSHAKE_FAILED[1] | _HANDSHAKE_FAILED[2]
_RCVMORE = int(zmq.RCVMORE)
_LINGER, _ROUTING_ID, _SNDHWM = int(zmq.LINGER), int(zmq.ROUTING_ID), int(zmq.SNDHWM)
_CURVE_SERVERKEY, _CURVE_PUBLICKEY = int(zmq.CURVE_SERVERKEY), int(zmq.CURVE_PUBLICKEY)
_CURVE_SECRETKEY = int(zmq.CURVE_SECRETKEY)
_HEARTBEAT_IVL, _HEARTBEAT_TIMEOUT = int(zmq.HEARTBEAT_IVL), int(zmq.HEARTBEAT_TIMEOUT)
_HEARTBEAT_TTL = int(zmq.HEARTBEAT_TTL)
_SRCFD = int(zmq.SRCFD)
# Linux tells how long ago a TCP connection last brought data (``tcpi_last_data_recv``,
# in ms, at this offset of ``struct tcp_info``): what a node that does not ping
# a peer judges the peer's link by.
_TCP_INFO: int | None = getattr(socket, "TCP_INFO", None) if sys.platform == "linux" else None
_LAST_DATA_RECV = struct.Struct("=I")
_LAST_DATA_RECV_AT = 52
_TCP_INFO_SIZE = 104


def peer_identity(name: str, incarnation: str) -> bytes:
    """The routing id a peer's DEALER presents: ``@name/incarnation``."""
    return f"@{name}/{incarnation}".encode()


def line_identity(name: str, incarnation: str, serial: int) -> bytes:
    """The routing id of a peer's call line: ``@name/incarnation#serial``."""
    return f"@{name}/{incarnation}#{serial}".encode()


def parse_peer_identity(routing_id: bytes) -> tuple[str, str] | None:
    """``(name, incarnation)`` of a peer's routing id (DEALER or call line), or None."""
    if not routing_id.startswith(b"@"):
        return None
    text = routing_id[1:].split(b"#", 1)[0].decode("utf-8", "replace")
    name, sep, incarnation = text.rpartition("/")
    return (name, incarnation) if sep else None


def quiet_ms(fd: int, peer: object) -> int | None:
    """Milliseconds since the TCP connection on ``fd`` last brought data (a frame or a
    ping), or None when ``fd`` is no longer connected to ``peer`` (Linux)."""
    if _TCP_INFO is None:
        return None
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _TCP_INFO_SIZE)
        if sock.getpeername() != peer:
            return None  # closed, and the descriptor is another connection's now
    except OSError:
        return None
    finally:
        sock.detach()
    if len(info) < _LAST_DATA_RECV_AT + 4:
        return None
    return int(_LAST_DATA_RECV.unpack_from(info, _LAST_DATA_RECV_AT)[0])


def _peer_of(fd: int) -> object:
    """The remote address of the connected socket ``fd``, or None."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return None
    try:
        return sock.getpeername()
    except OSError:
        return None
    finally:
        sock.detach()


class _Heard:
    """A peer's link to our inbox, watched for silence (see ``Transport.watch_quiet``)."""

    __slots__ = ("fd", "key", "on_quiet", "peer", "since")

    def __init__(self, key: str, on_quiet: Callable[[], None]) -> None:
        self.key = key
        self.on_quiet = on_quiet
        self.fd = -1  # its connection's descriptor in our inbox; -1 until a frame showed it
        self.peer: object = None  # that connection's remote address
        self.since = time.monotonic()  # since when no connection is known (0: one is)


def is_line(routing_id: bytes) -> bool:
    """Whether a routing id is a peer's call line (answered through the inbox)."""
    return routing_id.startswith(b"@") and b"#" in routing_id


class Transport:
    """Sockets of one node: the inbox and the DEALERs to peers.

    The ROUTER (inbox) is a CURVE server behind a ZAP handler accepting only
    the cluster key; peers, their call lines and clients send to it. Traffic
    to a peer leaves through a DEALER connected to that peer's inbox (Zyre's
    Harmony layout); answers to call lines and to clients leave through the
    inbox. The inbox is read with ``receive`` by whoever the node chooses
    (a thread waiting on ``inbox_fd``), never by the I/O loop.
    """

    def __init__(
        self,
        io: IOThread,
        *,
        identity: bytes,
        listen: str,
        keys: tuple[bytes, bytes],
        max_message_size: int,
        tick: Tick = DEFAULT,
        on_input: Callable[[], None] = lambda: None,
        reader_asleep: Callable[[], bool] = lambda: True,
        flush: Callable[[], None] = lambda: None,
    ) -> None:
        self.io = io
        self.identity = identity
        self.endpoint = ""
        self._listen = listen
        self._public, self._secret = keys
        self.max_message_size = max_message_size
        self.tick = tick
        # Told when input waits on the inbox that its fd may not signal, which
        # matters only while the inbox's reader sleeps: awake, it looks at the
        # inbox again before it sleeps.
        self._on_input = on_input
        self._reader_asleep = reader_asleep
        # Hands what waits on the inbox to the I/O thread's queue now (see _closed).
        self._flush = flush
        self._ctx = zmq.Context()
        # Each peer costs a DEALER and its monitor pair, plus call lines.
        self._ctx.max_sockets = 8192
        self._dealers: dict[str, zmq.Socket[bytes]] = {}
        self._monitors: dict[str, tuple[zmq.Socket[bytes], int]] = {}  # key -> (monitor, fd)
        # key -> since when its watched link has no authenticated connection (0: it has one)
        self._since: dict[str, float] = {}
        # Guards the DEALERs: threads send on them directly, which spares the
        # hop through the I/O thread on every call and every reply.
        self._dealers_lock = threading.Lock()
        self._router: zmq.Socket[bytes] | None = None
        # Guards the ROUTER: worker threads send replies on it directly, and
        # the thread reading it waits on its fd, not the socket (zmq_poll would
        # touch the socket outside the lock).
        self._router_lock = threading.Lock()
        self._router_fd = -1
        self._inbox_items: list[tuple[zmq.Socket[bytes], int]] = []
        self.read_full = False  # the last ``receive`` stopped at its budget
        self._zap: ZapHandler | None = None
        self._watcher: HandshakeWatcher | None = None
        # Peers' links to our inbox: routing id -> descriptor of the connection
        # its last frame came on (written by the inbox's reader), and those
        # watched for silence (routing id -> watch; key -> routing id).
        self._fds: dict[bytes, int] = {}
        self._heard: dict[bytes, _Heard] = {}
        self._heard_keys: dict[str, bytes] = {}
        self._scan: Any = None  # the timer of the next look at the watched links
        self.dropped = 0

    # ---- set-up and tear-down ------------------------------------------
    def open(self) -> str:
        """Bind the inbox (runs on the I/O thread) and return the endpoint to advertise."""
        return self.io.run_sync(self._open)

    def _open(self) -> str:
        loop = self.io.loop
        soft, _ = raise_fd_limit()
        log.debug("%d file descriptors available", soft)
        refusals = RefusalLog()
        # The context's first socket starts libzmq's threads, which inherit
        # this thread's timer slack: theirs lets pings wait for other wake-ups.
        with _timer_slack(self.tick.zmtp_slack_ms):
            self._zap = ZapHandler(self._ctx, self._public, refusals)
        loop.add_reader(self._zap.socket, self._zap.drain)
        router = self._ctx.socket(zmq.ROUTER)
        router.linger = 0
        router.curve_server = True
        router.curve_secretkey = self._secret
        router.router_mandatory = 1
        router.router_handover = 1
        # libzmq closes connections sending far beyond the limit; frames between
        # the limit and twice it reach decode_frame and get logged.
        router.maxmsgsize = 2 * self.max_message_size + 1024
        # Connections whose host vanished are shed by the kernel's keepalive
        # probes, not pings: an inbox pinging each connection wakes both nodes.
        idle, interval, count = self.tick.inbox_keepalive_s
        router.tcp_keepalive = 1
        router.tcp_keepalive_idle = idle
        router.tcp_keepalive_intvl = interval
        router.tcp_keepalive_cnt = count
        # A connection that has not finished its CURVE handshake by then is
        # dropped; meanwhile the watcher caps how many may wait at once.
        router.handshake_ivl = int(HANDSHAKE_WINDOW * 1000)
        self._watcher = HandshakeWatcher(router, refusals)
        loop.add_reader(self._watcher.socket, self._watcher.drain)
        try:
            router.bind(self._listen)
        except zmq.ZMQError as exc:
            router.close(linger=0)
            raise TransportError(f"cannot listen on {self._listen}: {exc}") from exc
        self._router = router
        self._router_fd = cast(int, router.fd)
        self._inbox_items = [(router, _POLLIN)]
        self.endpoint = _advertised(router.getsockopt_string(zmq.LAST_ENDPOINT))
        self._zap.where = self._watcher.where = self.endpoint
        # Look once now for input that came before the loop watched the sockets.
        for drain in (self._zap.drain, self._watcher.drain):
            drain()
        return self.endpoint

    @property
    def inbox_fd(self) -> int:
        """The inbox's ``ZMQ_FD``: readable when the inbox may have input (after ``open``)."""
        return self._router_fd

    def close(self, linger: float = 0.0) -> None:
        """Close every socket; DEALERs keep unsent messages up to ``linger`` seconds."""
        loop = self.io.loop
        if self._scan is not None:
            self._scan.cancel()
            self._scan = None
        self._heard.clear()
        self._heard_keys.clear()
        for key in list(self._dealers):
            self.unlink(key, linger=linger)
        with self._router_lock:
            if self._router is not None:
                self._router.close(linger=0)
            self._router = None
            self._inbox_items = []
        sockets = [self._zap.socket if self._zap else None]
        sockets += [self._watcher.socket if self._watcher else None]
        for sock in sockets:
            if sock is not None and not sock.closed:
                loop.remove_reader(sock)
                sock.close(linger=0)
        self._router = None

    @property
    def context(self) -> zmq.Context[zmq.Socket[bytes]]:
        """The node's zmq context (thread-safe; for the call lines)."""
        return self._ctx

    def terminate(self) -> None:
        """Terminate the context (any thread, after ``close``; waits for lingering sends)."""
        self._ctx.term()

    # ---- peers ---------------------------------------------------------
    @property
    def seed_identity(self) -> bytes:
        """The routing id of this node's seed dials: its own plus ``#seed``.

        Two connections presenting one routing id to an inbox would take it
        from each other in turn (ROUTER_HANDOVER), dropping frames each time.
        """
        return self.identity + b"#seed"

    def link(
        self,
        key: str,
        endpoint: str,
        *,
        identity: bytes | None = None,
        on_closed: Callable[[str], None] | None = None,
        pings: bool = True,
        on_refused: Callable[[], None] | None = None,
    ) -> bool:
        """Connect a DEALER for ``key`` to ``endpoint``; False if it already exists.

        With ``on_closed``, the DEALER is watched (a socket monitor, read on
        the I/O thread) and ``on_closed(why)`` runs when its connection closes:
        at once when the peer's process dies (the kernel resets it), or, if it
        ``pings``, when libzmq's own heartbeats (ZMTP PING/PONG, answered by
        the peer's libzmq threads even while its Python holds the GIL) go
        unanswered. A link that does not ping leaves silence to the peer's
        pings (``watch_quiet`` on this side).

        With ``on_refused``, ``on_refused()`` runs (on the I/O thread) when
        something answers at ``endpoint`` but the CURVE handshake fails: a node
        with another cookie, or no hotmesh node at all. libzmq goes on retrying.
        """
        events = (_LINK_EVENTS if on_closed is not None else 0) | (
            _REFUSAL_EVENTS if on_refused is not None else 0
        )
        with self._dealers_lock:
            if key in self._dealers:
                return False
            sock, monitor = self._dealer(endpoint, identity, events=events, pings=pings)
            self._dealers[key] = sock
        if monitor is not None:
            fd = int(monitor.getsockopt(zmq.FD))
            self._monitors[key] = (monitor, fd)
            if on_closed is not None:
                self._since[key] = time.monotonic()

            def look() -> None:
                self._closed(key, monitor, on_closed, on_refused)

            self.io.loop.add_reader(fd, look)
            look()  # events that came before the reader
        return True

    def unconnected(self, longer_than: float) -> list[str]:
        """Watched links without a live, authenticated connection for ``longer_than`` s,
        ours or (``watch_quiet``) the peer's to us.

        A peer that vanished before our connection to it was ever made gives
        no closed connection to report; this finds it.
        """
        now = time.monotonic()
        keys = [key for key, since in self._since.items() if since and now - since > longer_than]
        for heard in self._heard.values():
            if heard.since and now - heard.since > longer_than and heard.key not in keys:
                keys.append(heard.key)
        return keys

    def all_connected(self) -> bool:
        """Whether every watched link, ours or the peer's to us, has a live connection."""
        return not any(self._since.values()) and not any(h.since for h in self._heard.values())

    # ---- peers' links to us ---------------------------------------------
    @property
    def can_watch_quiet(self) -> bool:
        """Whether ``watch_quiet`` works here: a TCP inbox on Linux (after ``open``)."""
        return _TCP_INFO is not None and self.endpoint.startswith("tcp://")

    def watch_quiet(self, key: str, routing_id: bytes, on_quiet: Callable[[], None]) -> None:
        """Watch the link a peer presents to our inbox as ``routing_id`` (I/O thread).

        ``on_quiet()`` runs once that link has brought nothing, not even a
        ping, for ``tick.quiet_limit_ms``: the peer pings us on it and we do
        not ping it, so its pings are our proof that it lives. The kernel
        keeps the time of the last data a TCP connection brought; the node
        reads it (``quiet_ms``) when the soonest watched link could turn
        quiet, a few times a tick in all whatever the number of peers. The
        connection is known from the first frame it brings; until then, or
        once it closed, ``unconnected`` lists ``key``, counting from when our
        own link to ``key`` last connected, if later. Requires
        ``can_watch_quiet``.
        """
        self.unwatch_quiet(key)
        heard = _Heard(key, on_quiet)
        self._heard[routing_id] = heard
        self._heard_keys[key] = routing_id
        fd = self._fds.get(routing_id)
        if fd is not None:
            self._heard_on(routing_id, fd)

    def unwatch_quiet(self, key: str) -> None:
        """Stop watching the peer's link for ``key`` (no error if it was not watched)."""
        routing_id = self._heard_keys.pop(key, None)
        if routing_id is not None:
            self._heard.pop(routing_id, None)

    def _our_link_up(self, key: str) -> None:
        """Our link to ``key`` connected: its link to us, not shown yet, has as long
        again (it is often made only once ours brought it our welcome)."""
        heard = self._heard.get(self._heard_keys.get(key, b""))
        if heard is not None and heard.since:
            heard.since = time.monotonic()

    def _heard_on(self, routing_id: bytes, fd: int) -> None:
        """A frame of a watched link came on connection ``fd`` (I/O thread)."""
        heard = self._heard.get(routing_id)
        if heard is None or heard.fd == fd:
            return
        peer = _peer_of(fd)
        if peer is None:
            return  # closed already: its close is what counts
        heard.fd, heard.peer, heard.since = fd, peer, 0.0
        if self._scan is None:
            # It just brought a frame: it cannot turn quiet before the limit.
            self._scan = self.io.loop.call_later(self.tick.quiet_limit_ms / 1000, self._look)

    def _look(self) -> None:
        """Read how long each watched link has been quiet; report the quiet ones, and
        look again when the soonest of the others could be."""
        self._scan = None
        limit = self.tick.quiet_limit_ms
        now = time.monotonic()
        soonest = -1
        quiet: list[_Heard] = []
        for routing_id, heard in self._heard.items():
            if heard.fd < 0:
                continue
            ms = quiet_ms(heard.fd, heard.peer)
            if ms is None:
                # Closed: no connection until another frame shows one (its
                # descriptor may have the same number: forget the old one).
                heard.fd, heard.since = -1, now
                self._fds.pop(routing_id, None)
            elif ms >= limit:
                heard.fd, heard.since = -1, now
                self._fds.pop(routing_id, None)
                quiet.append(heard)
            elif soonest < 0 or limit - ms < soonest:
                soonest = limit - ms
        if soonest >= 0:
            # A few ms more: the kernel counts in jiffies.
            self._scan = self.io.loop.call_later(soonest / 1000 + 0.005, self._look)
        for heard in quiet:
            if self._heard.get(self._heard_keys.get(heard.key, b"")) is heard:
                heard.on_quiet()

    def unlink(self, key: str, linger: float = 0.0) -> None:
        """Close the DEALER for ``key`` (no error if there is none)."""
        watched = self._monitors.pop(key, None)
        self._since.pop(key, None)
        self.unwatch_quiet(key)
        if watched is not None:
            self.io.loop.remove_reader(watched[1])
        with self._dealers_lock:
            sock = self._dealers.pop(key, None)
            if sock is not None:
                if watched is not None:
                    with contextlib.suppress(zmq.ZMQError):
                        sock.disable_monitor()
                sock.close(linger=int(linger * 1000))
        if watched is not None:
            watched[0].close(linger=0)

    def _closed(
        self,
        key: str,
        monitor: zmq.Socket[bytes],
        on_closed: Callable[[str], None] | None,
        on_refused: Callable[[], None] | None = None,
    ) -> None:
        """Read the DEALER's monitor events; ``on_closed(why)`` once if its connection
        closed, ``on_refused()`` once per batch of events if a handshake failed.

        A connection that completed its handshake and closed counts, and so
        does a connection attempt refused outright (nothing listens there)
        while none is up; a connection cut during its handshake (a peer
        capping them) is retried by libzmq, and if it never succeeds,
        ``unconnected`` tells.
        """
        closed = ""
        refused = False
        try:
            # The fd only says "look": drain while EVENTS has input (edge-triggered).
            while not monitor.closed and int(monitor.getsockopt(_EVENTS)) & _POLLIN:
                head = monitor.recv(_NOBLOCK)
                while monitor.get(_RCVMORE):
                    monitor.recv(_NOBLOCK)
                event = int.from_bytes(head[:2], "little")
                if event == _HANDSHAKEN:
                    self._since[key] = 0.0
                    self._our_link_up(key)
                elif event == _DISCONNECTED and key in self._since:
                    if self._since[key] == 0.0:
                        closed = "connection closed"
                    self._since[key] = time.monotonic()
                elif event == _CONNECT_FAILED and self._since.get(key):
                    # Refused outright (nothing listens there any more): the
                    # peer died before our connection to it was ever made.
                    closed = "connection refused"
                elif event in _HANDSHAKE_FAILED:
                    refused = True
        except zmq.ZMQError:
            return
        current = self._monitors.get(key, (None,))[0] is monitor
        if refused and on_refused is not None and current:
            self.io.submit(on_refused)
        if closed and on_closed is not None and current:
            # A peer's last messages (its bye) came before its connection
            # closed: they are handled first, though another thread reads
            # the inbox. ``flush`` queues them on this loop; the closing
            # queues behind them. Input left beyond the flush's budget is the
            # reader's, which may have to be told.
            self._flush()
            self._on_input()
            self.io.submit(on_closed, closed)

    def send(self, key: str, data: bytes) -> bool:
        """Send one frame to the peer ``key`` (any thread); False if it cannot take it."""
        with self._dealers_lock:
            sock = self._dealers.get(key)
            if sock is None:
                return False
            try:
                sock.send(data, _NOBLOCK, copy=len(data) < 65536)
                return True
            except zmq.ZMQError as exc:
                error = exc
        self.dropped += 1
        log.warning("dropped a message to %s: %s (peer congested or gone)", key, error)
        return False

    def reply(self, routing_id: bytes, data: bytes) -> bool:
        """Send one frame through the inbox to ``routing_id`` (any thread); False if gone."""
        with self._router_lock:
            router = self._router
            if router is None:
                return False
            try:
                _send(router, routing_id, _NOBLOCK | _SNDMORE)
                _send(router, data, _NOBLOCK)
                ok = True
            except zmq.ZMQError:
                self.dropped += 1
                ok = False
            # Sending processes the socket's pending commands, which clears
            # its fd: if input is waiting, its reader must be told (asking
            # costs ~1 us, spared when the reader replies itself).
            pending = self._reader_asleep() and bool(router.getsockopt(_EVENTS) & _POLLIN)  # type: ignore[operator]
        if pending:
            self._on_input()
        return ok

    def send_once(self, endpoint: str, data: bytes, linger: float = 1.0) -> None:
        """Send one frame to an endpoint we do not link to (e.g. a refusal)."""
        sock, _ = self._dealer(endpoint, self.identity + b"#once")
        with contextlib.suppress(zmq.ZMQError):
            sock.send(data, zmq.NOBLOCK)
        sock.close(linger=int(linger * 1000))

    def _dealer(
        self,
        endpoint: str,
        identity: bytes | None = None,
        *,
        events: int = 0,
        pings: bool = True,
    ) -> tuple[zmq.Socket[bytes], zmq.Socket[bytes] | None]:
        sock = self._ctx.socket(zmq.DEALER)
        # Options by number: setting them as attributes costs ~7 us each in
        # pyzmq's name lookups, and a node links to every peer.
        tick = self.tick
        options: list[tuple[int, int | bytes]] = [
            (_LINGER, 0),
            (_ROUTING_ID, identity or self.identity),
            (_CURVE_SERVERKEY, self._public),
            (_CURVE_PUBLICKEY, self._public),
            (_CURVE_SECRETKEY, self._secret),
            (_SNDHWM, 10000),
        ]
        if pings:
            options += [
                (_HEARTBEAT_IVL, tick.zmtp_interval_ms),
                (_HEARTBEAT_TIMEOUT, tick.zmtp_timeout_ms),
                (_HEARTBEAT_TTL, tick.zmtp_ttl_ms),
            ]
        for option, value in options:
            sock.set(option, value)
        # Watched before it connects, so that no event can come unseen.
        monitor = sock.get_monitor_socket(events) if events else None
        sock.connect(endpoint)
        return sock, monitor

    # ---- input ---------------------------------------------------------
    def receive(self, signalled: bool = False) -> list[Message]:
        """The messages waiting on the inbox (up to a budget), decoded; [] when none.

        ``signalled``: the caller was woken by ``inbox_fd``, so input most likely
        waits; one message is read without asking first (the reader asks before
        it sleeps again: it calls this until it returns nothing).

        Undecodable frames are dropped and logged. One thread at a time reads.
        ``read_full`` says afterwards whether the read stopped at its budget
        (1 message when ``signalled``, else ``RECEIVE_BUDGET``): input may still
        wait, and the inbox's fd signals only for input that comes later.
        """
        # Plain ints, not zmq's IntFlag members: each flag operation on those
        # builds an enum value, a few microseconds per frame. And asking whether
        # input waits costs ~1 us where a receive raising zmq.Again costs ~9 us;
        # but once the fd signalled, a receive seldom raises, and each ask is
        # also system calls: the one that would say "nothing more" is left to
        # the reader's look before it sleeps. A zero-timeout zmq_poll asks as
        # ZMQ_EVENTS does (it asks ZMQ_EVENTS), without getsockopt's lookup of
        # the option's enum (two Python calls), for one more system call.
        batch: list[tuple[bytes, zmq.Frame, list[zmq.Frame]]] = []
        budget = 1 if signalled else RECEIVE_BUDGET
        full = False
        self.read_full = False
        with self._router_lock:
            router = self._router
            if router is None:
                return []
            items = self._inbox_items
            try:
                while signalled or _poll(items, 0):
                    # A ROUTER's routing id is always followed by the message,
                    # and a Frame knows whether more parts follow: that spares a
                    # getsockopt(RCVMORE) per part (each ~1.5 us, enum lookups).
                    routing_id = router.recv(_NOBLOCK)
                    frame = router.recv(_NOBLOCK, copy=False)
                    extra = []
                    more = frame.more
                    while more:
                        part = router.recv(_NOBLOCK, copy=False)
                        extra.append(part)
                        more = part.more
                    batch.append((routing_id, frame, extra))
                    budget -= 1
                    if not budget:
                        full = True
                        break
            except zmq.Again:
                pass  # signalled for something else than input
            except zmq.ZMQError as exc:
                log.warning("inbox receive failed: %s", exc)
        self.read_full = full
        messages: list[Message] = []
        fds, heard = self._fds, self._heard
        for routing_id, frame, extra in batch:
            if extra:
                self._reject(extra[-1], f"{len(extra) + 2} frames instead of 2")
                continue
            if routing_id[:1] == b"@" and b"#" not in routing_id:
                # Which connection a peer's link uses, for watch_quiet: known
                # before the watch may be (its hello comes first). Written here,
                # then the watch read; the I/O thread does the reverse.
                fd = frame.get(_SRCFD)
                if fds.get(routing_id) != fd:
                    if len(fds) > 4096:
                        fds.clear()
                    fds[routing_id] = fd
                    if routing_id in heard:
                        self.io.submit(self._heard_on, routing_id, fd)
            try:
                message = decode_frame(frame.buffer, max_size=self.max_message_size)
            except (DecodeError, MessageTooLarge) as exc:
                self._reject(frame, str(exc))
                continue
            messages.append((routing_id, message))
        return messages

    def _reject(self, frame: zmq.Frame, why: str) -> None:
        self.dropped += 1
        try:
            peer = frame.get("Peer-Address")
        except zmq.ZMQError:
            peer = "an unknown peer"
        log.warning("dropped a frame from %s on %s: %s", peer, self.endpoint, why)


@contextlib.contextmanager
def _timer_slack(ms: int) -> Iterator[None]:
    """Give threads started meanwhile by this one a timer slack of ``ms`` (Linux).

    The kernel may then run their timers up to ``ms`` late, and runs them at
    once when anything else wakes the thread first. A thread may set its own
    (``/proc/TID/timerslack_ns``, needing no privilege); new threads inherit it.
    """
    path = f"/proc/{threading.get_native_id()}/timerslack_ns"
    try:
        with open(path, "r+") as f:
            before = f.read().strip()
            f.seek(0)
            f.write(str(ms * 1_000_000))
    except OSError:
        yield  # not Linux, or a kernel without it: timers run on time
        return
    try:
        yield
    finally:
        with contextlib.suppress(OSError), open(path, "w") as f:
            f.write(before)


def _advertised(endpoint: str) -> str:
    """The bound endpoint with a wildcard host replaced by this host's name."""
    for wildcard in ("tcp://0.0.0.0:", "tcp://*:", "tcp://[::]:"):
        if endpoint.startswith(wildcard):
            return f"tcp://{socket.gethostname()}:{endpoint[len(wildcard) :]}"
    return endpoint
