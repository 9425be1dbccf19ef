"""The node's switchboard: one table of message kinds, and the ways out (no sockets of its own).

The worker pool's leader thread reads the inbox through ``Router.drain``:
calls become jobs that the pool runs on worker threads (the first on the
leader itself), and every other message goes to the I/O thread in one batch,
where ``Router.on_message`` notes the peer's traffic for membership and hands
the message to the handler registered for its kind. The built-in kinds (calls, replies, pings,
membership) are registered in the same table as an extension's kinds, through
``register``. The router is also the ``Peers`` object the ``Caller`` uses:
who is up, the calling thread's line to a peer, the shared per-peer path, the
codec and local runs. It keeps three bounded caches (peer identities, reply
routes, full node names). Runs on the I/O thread (``on_message``), on the
pool's leader (``drain``) and on calling threads (everything else); the
sockets belong to the transport.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from hotmesh._errors import ConfigError, NodeStopped
from hotmesh._membership import driver as membership
from hotmesh._mesh.iothread import IOThread
from hotmesh._mesh.lines import CallLines, Line
from hotmesh._mesh.transport import Transport, is_line, parse_peer_identity
from hotmesh._paths import full_node_name
from hotmesh._rpc.caller import Caller, Deliver
from hotmesh._rpc.dispatch import Dispatcher
from hotmesh._rpc.workers import Work
from hotmesh._runtime import Handler
from hotmesh._wire.codec import pack
from hotmesh._wire.frames import HEADER, decode_frame, encode_frame, too_large

log = logging.getLogger("hotmesh.node")

_CACHE_CAP = 4096  # entries per cache; beyond, the cache starts again empty

Peer = tuple[str, str]
"""(name, incarnation) of a peer, parsed from its routing id."""


class Router:
    """Routes one node's messages: in by kind, out to peers and clients.

    ``up`` and ``endpoints`` are the connected peers, set by the node as the
    membership driver reports them.
    """

    def __init__(self, name: str, incarnation: str, *, max_message_size: int, io: IOThread) -> None:
        self.name = name
        self.incarnation = incarnation
        self.max_message_size = max_message_size
        self.up: frozenset[str] = frozenset()
        self.endpoints: dict[str, str] = {}
        self.stopped = False
        self._io = io
        self._handlers: dict[str, Handler] = {}
        self._peer_ids: dict[bytes, Peer | None] = {}
        # Per-call lookups kept across calls: reply routing id -> (peer, whether
        # it is a call line), target as given -> full name.
        self._routes: dict[bytes, tuple[Peer | None, bool]] = {}
        self._full_names: dict[str, str] = {}
        # Held from reading the inbox until its messages are queued where they
        # go, so that messages read by two threads are queued in order.
        self._reading = threading.Lock()
        # Set by ``connect`` once the node has built them.
        self._transport: Transport
        self._driver: membership.MembershipDriver
        self._lines: CallLines
        self._dispatcher: Dispatcher
        self._caller: Caller

    def connect(
        self,
        transport: Transport,
        driver: membership.MembershipDriver,
        lines: CallLines,
        dispatcher: Dispatcher,
        caller: Caller,
    ) -> None:
        """Take the node's layers and register the built-in kinds."""
        self._transport = transport
        self._driver = driver
        self._lines = lines
        self._dispatcher = dispatcher
        self._caller = caller
        self.register("call", dispatcher.handle)
        self.register("reply", self._on_reply)
        self.register("ping", self._on_ping)
        self.register("pong", _ignore)
        for kind in membership.KINDS:
            self.register(kind, self._on_membership)

    # ---- the table of kinds ----------------------------------------------
    def register(self, kind: str, handler: Handler) -> None:
        """Hand messages of type ``kind`` to ``handler(sender, message)`` on the I/O thread.

        Raises:
            ConfigError: ``kind`` already has a handler (every built-in kind has one).
        """
        if kind in self._handlers:
            raise ConfigError(f"message type {kind!r} already has a handler")
        self._handlers[kind] = handler

    def on_message(self, routing_id: bytes, message: dict[str, Any]) -> None:
        """One message from a peer or client (I/O thread): note the traffic, run its handler."""
        try:
            peer = self._peer_ids[routing_id]
        except KeyError:
            peer = self._learn_peer(routing_id)
        if peer is not None:
            self._driver.traffic(*peer)
        handler = self._handlers.get(message["t"])
        if handler is None:
            log.debug("dropped a message of unknown type %r", message["t"])
            return
        handler(routing_id, message)

    def drain(self, signalled: bool = False) -> list[Work]:
        """Read the inbox (on the worker pool's leader): calls as jobs; the rest to the I/O thread.

        ``signalled``: the inbox's fd just woke the reader (see ``Transport.receive``).
        A call's traffic is noted for membership only when that would change
        something there (an unknown peer, a name clash), through the I/O thread.
        """
        with self._reading:
            jobs: list[Work] = []
            while True:
                received = self._transport.receive(signalled)
                if not received and not self._transport.read_full:
                    return jobs
                elsewhere: list[tuple[bytes, dict[str, Any] | None]] = []
                run = self._dispatcher.run
                hears_nothing_new = self._driver.view.hears_nothing_new
                for routing_id, message in received:
                    if message.get("t") != "call":
                        elsewhere.append((routing_id, message))
                        continue
                    try:
                        peer = self._peer_ids[routing_id]
                    except KeyError:
                        peer = self._learn_peer(routing_id)
                    if peer is not None and not hears_nothing_new(peer[0]):
                        elsewhere.append((routing_id, None))
                    jobs.append((run, (routing_id, message)))
                if elsewhere:
                    self._io.submit(self._on_messages, elsewhere)
                # A reader that gets no job sleeps on the inbox's fd, which
                # signals only for input that comes later: a full read with no
                # call in it must be followed by another, or what it left
                # waits for the next message (a burst of over 256 replies or
                # extension messages stalled so).
                if jobs or not self._transport.read_full:
                    return jobs
                signalled = False

    def flush(self) -> None:
        """Read the inbox now (I/O thread): its messages are queued on the I/O loop, in
        order after those read before, and its calls go to the worker pool."""
        for _, (sender, message) in self.drain():
            self._dispatcher.handle(sender, message)

    def _on_messages(self, received: list[tuple[bytes, dict[str, Any] | None]]) -> None:
        """Messages read by the leader (I/O thread); None: only note the sender's traffic."""
        for routing_id, message in received:
            try:
                if message is not None:
                    self.on_message(routing_id, message)
                elif (peer := self._peer_ids.get(routing_id)) is not None:
                    self._driver.traffic(*peer)
            except Exception:
                kind = message.get("t") if message is not None else "call"
                log.exception("handling a %r message failed", kind)

    def _learn_peer(self, routing_id: bytes) -> Peer | None:
        peer = parse_peer_identity(routing_id)
        if len(self._peer_ids) > _CACHE_CAP:
            self._peer_ids.clear()
        self._peer_ids[routing_id] = peer
        return peer

    def _on_reply(self, routing_id: bytes, message: dict[str, Any]) -> None:
        peer = self._peer_ids.get(routing_id)
        if peer is not None:
            self._caller.on_reply(peer[0], message)

    def _on_ping(self, routing_id: bytes, message: dict[str, Any]) -> None:
        pong = {"t": "pong", "node": self.name, "inc": self.incarnation}
        self.route(routing_id, self.encode(pong))

    def _on_membership(self, routing_id: bytes, message: dict[str, Any]) -> None:
        peer = self._peer_ids.get(routing_id)
        if peer is not None:
            self._driver.handle(peer[0], peer[1], message)

    # ---- the ways out ----------------------------------------------------
    def send_to(self, sender: bytes, message: dict[str, Any]) -> None:
        """Encode ``message`` here and send it to whoever sent ``sender``'s message (any thread)."""
        self.route(sender, encode_frame(message, max_size=self.max_message_size))

    def reply(self, sender: bytes, message: dict[str, Any]) -> None:
        """``send_to`` for a reply the dispatcher built (a dict with its ``t``): every
        call's reply comes this way, so it is packed and routed here, two Python
        calls fewer.

        Raises:
            EncodeError: a value cannot travel.
            MessageTooLarge: the frame is over the node's size limit.
        """
        data = HEADER + pack(message)
        if len(data) > self.max_message_size:
            raise too_large(message["t"], len(data), self.max_message_size)
        route = self._routes.get(sender)
        if route is not None and (route[0] is None or route[1]):
            self._transport.reply(sender, data)  # a call line or a client, as in ``route``
        else:
            self.route(sender, data)

    def route(self, sender: bytes, data: bytes) -> None:
        """Send a frame back to a peer or client by its routing id (any thread)."""
        route = self._routes.get(sender)
        if route is None:
            route = (parse_peer_identity(sender), is_line(sender))
            if len(self._routes) > _CACHE_CAP:
                self._routes.clear()
            self._routes[sender] = route
        peer, line = route
        if peer is None or line:
            # Clients and peers' call lines are answered through the inbox.
            self._transport.reply(sender, data)
        elif self._driver.view.incarnation_of(peer[0]) == peer[1]:
            self._transport.send(peer[0], data)

    def full_name(self, target: str) -> str:
        """``target`` as a full node name (cached)."""
        name = self._full_names.get(target)
        if name is None:
            name = full_node_name(target)
            if len(self._full_names) > _CACHE_CAP:
                self._full_names.clear()
            self._full_names[target] = name
        return name

    # ---- Peers, for the Caller -------------------------------------------
    def is_up(self, target: str) -> bool:
        """Whether ``target`` is a connected peer."""
        return target in self.up

    def line_for(self, target: str) -> Line | None:
        """The calling thread's own line to ``target``; None when it cannot have one."""
        endpoint = self.endpoints.get(target)
        incarnation = self._driver.view.incarnation_of(target)
        if not endpoint or not incarnation:
            return None
        return self._lines.line_for(target, endpoint, incarnation)

    def lines_for(self, targets: list[str]) -> list[Line | None]:
        """``line_for`` of each target (a multicall's), in one call."""
        endpoints, incarnation_of = self.endpoints, self._driver.view.incarnation_of
        return self._lines.lines_for(
            [(target, endpoints.get(target), incarnation_of(target)) for target in targets]
        )

    def send(self, target: str, data: bytes) -> None:
        """Send a frame to a peer on the shared per-peer path."""
        self._transport.send(target, data)

    def encode(self, message: dict[str, Any]) -> bytes:
        """One message as a frame within the node's size limit."""
        return encode_frame(message, max_size=self.max_message_size)

    def decode(self, data: bytes) -> dict[str, Any]:
        """One frame as a message within the node's size limit."""
        return decode_frame(data, max_size=self.max_message_size)

    def run_local(self, message: dict[str, Any], deliver: Deliver) -> None:
        """Run a call to this node on a worker; ``deliver`` the reply as it would arrive.

        Raises:
            NodeStopped: the node has stopped.
        """
        if self.stopped:
            raise NodeStopped(self.name, f"node {self.name} has stopped")
        self._dispatcher.run_local(message, deliver, self.encode)

    def on_io_thread(self) -> bool:
        """Whether the calling thread is the node's I/O thread."""
        return self._io.in_thread()


def _ignore(routing_id: bytes, message: dict[str, Any]) -> None:
    """A pong nobody waits for (clients read theirs on their own connection)."""
