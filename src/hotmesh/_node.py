"""The Node: the composition root that starts and stops every layer (threads and sockets).

``start()`` returns a running ``Node``; ``current_node()`` finds the node a
piece of code runs on. Only this module sees every layer.
"""

from __future__ import annotations

import importlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hotmesh._errors import ConfigError, HotmeshError, NameInUse, NodeDown
from hotmesh._membership import driver as membership
from hotmesh._membership.events import MonitorCallback, NodeEvents
from hotmesh._mesh.iothread import IOThread
from hotmesh._mesh.lines import CallLines, Line
from hotmesh._mesh.transport import Transport, is_line, parse_peer_identity, peer_identity
from hotmesh._paths import NODE_NAME_RE, full_node_name, node_state_dir
from hotmesh._rpc.caller import Caller
from hotmesh._rpc.dispatch import CURRENT_NODE, Dispatcher
from hotmesh._rpc.workers import WorkerPool
from hotmesh._wire.frames import DEFAULT_MAX_MESSAGE_SIZE, decode_frame, encode_frame

log = logging.getLogger("hotmesh.node")

DEFAULT_TICK = 4.0
"""Seconds within which a silent peer is reported down (heartbeats every tick/4)."""

_EXTENSIONS: list[str] = [
    "hotmesh.settings:_start",
    "hotmesh.deploy._startup:start",
    "hotmesh._console.server:start_console",
]
"""``"module:function"`` entries; each ``function(node)`` runs at start once the
transport is up and may return a callable run at stop (in reverse order)."""

Handler = Callable[[bytes, dict[str, Any]], None]
_MAX_LINES = 256  # call lines (thread, peer) per node; beyond, calls share the DEALERs
_BUILTIN_KINDS = frozenset({"call", "reply", "ping", "pong", *membership.KINDS})

_running: list[Node] = []
_running_lock = threading.Lock()


def current_node() -> Node:
    """The node the calling code runs on.

    Inside a remote call it is the node running the call; elsewhere it is the
    only node running in this process.

    Raises:
        HotmeshError: no node runs in this process, or several do and the
            caller is not inside a call.
    """
    node = CURRENT_NODE.get(None)
    if node is not None:
        return node
    with _running_lock:
        running = list(_running)
    if len(running) == 1:
        return running[0]
    if not running:
        raise HotmeshError("no hotmesh node is running in this process (call hotmesh.start())")
    names = ", ".join(n.name for n in running)
    raise HotmeshError(f"several nodes run in this process ({names}); use the node object")


# Functions other nodes and clients call by dotted path ("hotmesh._node.endpoint_of").
def endpoint_of(name: str) -> str | None:
    """The endpoint of node ``name`` as the current node knows it (None if unknown)."""
    return current_node().endpoint_of(name)


def connected_nodes() -> list[str]:
    """The peers of the current node."""
    return current_node().nodes()


def node_info() -> dict[str, Any]:
    """Name, endpoint, pid, incarnation and peers of the current node."""
    node = current_node()
    return {
        "name": node.name,
        "endpoint": node.endpoint,
        "pid": os.getpid(),
        "incarnation": node.incarnation,
        "nodes": node.nodes(),
    }


def start(
    name: str,
    *,
    listen: str = "tcp://127.0.0.1:0",
    seeds: Iterable[str] = (),
    cookie: str | None = None,
    cookie_file: str | os.PathLike[str] | None = None,
    tick: float = DEFAULT_TICK,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    state_dir: str | os.PathLike[str] | None = None,
    code_roots: Iterable[str | os.PathLike[str]] = (),
    release: str | os.PathLike[str] | None = None,
    app: str | Callable[[Node], Any] | None = None,
    join_timeout: float | None = None,
    max_workers: int = 64,
) -> Node:
    """Start a node in this process and join the mesh; return it running.

    The node's I/O runs on its own thread ("hotmesh-io") with its own event
    loop, so it never blocks the host program (plain, threaded or asyncio;
    an asyncio program calls ``start`` through ``asyncio.to_thread``).
    It binds ``listen``, registers in the per-host registry, says hello to the
    seeds and waits up to ``join_timeout`` (default ``2 * tick``) to be
    accepted; unreachable seeds only log a warning (the hello waits in the
    seed's queue and goes out when it comes up). Then every ``_EXTENSIONS``
    entry and ``app`` run.

    Example::

        node = hotmesh.start("billing", seeds=["tcp://127.0.0.1:7001"])
        node.call(node.nodes()[0], "os.getpid")
        node.stop()

    Args:
        name: ``name`` or ``name@host`` (host defaults to this host's short name).
        listen: zmq endpoint to bind; port 0 picks a free port.
        seeds: endpoints of any members of the mesh to join.
        cookie, cookie_file: the cluster secret (see ``load_cookie``).
        tick: a silent peer is reported down within this many seconds.
        max_message_size: larger frames are refused when sent, dropped when received.
        state_dir: this node's files (default ``hotmesh._paths.node_state_dir(name)``).
        code_roots: managed code roots handed to ``hotmesh.code.add_root``.
        release: release directory (read by the deploy layer from ``options``).
        app: ``"pkg.mod:func"`` or callable, called with the node once started.
        join_timeout: seconds to wait for the seeds' welcome.
        max_workers: most threads running remote calls at once.

    Raises:
        AuthError: CURVE is unavailable in this pyzmq build.
        CookieError: the cookie is missing, empty or its file is readable by others.
        NameInUse: a node of that name runs on this host or is in the mesh.
        TransportError: ``listen`` cannot be bound.
    """
    from hotmesh._mesh import cookie as cookies
    from hotmesh._mesh import registry

    options = {
        "name": name,
        "listen": listen,
        "seeds": tuple(seeds),
        "cookie_file": cookie_file,
        "tick": tick,
        "max_message_size": max_message_size,
        "state_dir": state_dir,
        "code_roots": tuple(code_roots),
        "release": release,
        "app": app,
        "join_timeout": join_timeout,
        "max_workers": max_workers,
    }
    full = full_node_name(name)
    if not NODE_NAME_RE.match(full):
        raise ConfigError(f"bad node name {name!r}: use letters, digits, '_', '.', '-' and one '@'")
    if tick <= 0 or max_message_size <= 0 or max_workers <= 0:
        raise ConfigError("tick, max_message_size and max_workers must be positive")
    cookies.require_curve()
    secret = cookies.load_cookie(cookie, cookie_file)
    node = Node(
        full,
        listen=listen,
        keys=cookies.curve_keypair(secret),
        tick=tick,
        max_message_size=max_message_size,
        state_dir=Path(state_dir) if state_dir else node_state_dir(full),
        options=options,
        max_workers=max_workers,
    )
    try:
        node._open()
        # The registry refuses a name held by a live process of this host: fail
        # fast, before the mesh hears of us.
        registry.register(full, node.endpoint, pid=os.getpid(), state_dir=str(node.state_dir))
        node._registered = True
        node._join(tuple(seeds), join_timeout if join_timeout is not None else 2 * tick)
        for root in options["code_roots"]:
            from hotmesh.code import add_root

            add_root(root)
        node._run_extensions()
        if app is not None:
            _resolve_app(app)(node)
    except BaseException:
        node.stop()
        raise
    return node


def _resolve_app(app: str | Callable[[Node], Any]) -> Callable[[Node], Any]:
    if callable(app):
        return app
    module_name, sep, attr = app.partition(":")
    if not sep:
        raise ConfigError(f"app must look like 'pkg.mod:func', not {app!r}")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    return target


class Node:
    """A running hotmesh node: a member of the mesh that answers remote calls.

    Create it with ``hotmesh.start()``. Thread-safe: every method may be called
    from any thread except the node's I/O thread (where only ``send_to`` and
    ``register_handler`` are allowed).
    """

    def __init__(
        self,
        name: str,
        *,
        listen: str,
        keys: tuple[bytes, bytes],
        tick: float,
        max_message_size: int,
        state_dir: Path,
        options: Mapping[str, Any],
        max_workers: int,
    ) -> None:
        self.name = name
        self.incarnation = f"{time.time_ns():x}-{secrets.token_hex(3)}"
        self.tick = tick
        self.max_message_size = max_message_size
        self.state_dir = state_dir
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.options: Mapping[str, Any] = MappingProxyType(dict(options))
        self._io = IOThread()
        self._transport = Transport(
            self._io,
            identity=peer_identity(name, self.incarnation),
            listen=listen,
            keys=keys,
            max_message_size=max_message_size,
            heartbeat=tick / 4,
            on_message=self._on_message,
        )
        self._driver = membership.MembershipDriver(
            self._transport,
            name=name,
            incarnation=self.incarnation,
            tick=tick,
            encode=self._encode,
            on_up=self._node_up,
            on_down=self._node_down,
        )
        self._lines = CallLines(
            self._transport.context, name, self.incarnation, keys, cap=_MAX_LINES
        )
        self._pool = WorkerPool(max_workers)
        self._dispatcher = Dispatcher(self, self._pool, self.send_to)
        self._caller = Caller(
            name,
            encode=self._encode,
            send=self._send_peer,
            is_up=lambda target: target in self._up,
            run_local=self._run_local,
            on_io_thread=self._io.in_thread,
            line_for=self._line_for,
            decode=lambda data: decode_frame(data, max_size=self.max_message_size),
        )
        self._handlers: dict[str, Handler] = {}
        self._peer_ids: dict[bytes, tuple[str, str] | None] = {}
        # Per-call lookups kept across calls (bounded): target -> full name,
        # reply routing id -> (peer, whether it is a call line).
        self._full_names: dict[str, str] = {}
        self._routes: dict[bytes, tuple[tuple[str, str] | None, bool]] = {}
        self._up: frozenset[str] = frozenset()
        self._endpoints: dict[str, str] = {}
        self._changed = threading.Condition()
        self._events = NodeEvents()
        self._stops: list[Callable[[], None]] = []
        self._stop_lock = threading.Lock()
        self._started = False
        self._stopped = False
        self._registered = False
        self.endpoint = ""

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running"
        return f"<hotmesh.Node {self.name} {self.endpoint} {state}>"

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- membership ----------------------------------------------------
    def nodes(self) -> list[str]:
        """Names of the connected peers (Erlang's ``nodes()``), sorted."""
        return sorted(self._up)

    def is_alive(self) -> bool:
        """Whether the node runs (started and not stopped)."""
        return self._started and not self._stopped

    def endpoint_of(self, name: str) -> str | None:
        """The endpoint of this node or of a connected peer; None when unknown."""
        if name == self.name:
            return self.endpoint
        return self._endpoints.get(name) if name in self._up else None

    def monitor_nodes(self, callback: MonitorCallback) -> Callable[[], None]:
        """Call ``callback(event, name)`` for every ``"nodeup"``/``"nodedown"``.

        Callbacks run in order on one events thread (never the I/O thread); a
        slow callback delays later events but not the mesh. Returns a function
        that stops the monitoring.
        """
        return self._events.subscribe(callback)

    def wait_connected(
        self, names: Iterable[str] = (), *, count: int = 0, timeout: float = 10.0
    ) -> bool:
        """Wait until every node of ``names`` (and at least ``count`` peers) is connected.

        Returns False if that did not happen within ``timeout`` seconds.
        """
        wanted = {full_node_name(n) for n in names}
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (wanted <= self._up and len(self._up) >= count):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopped:
                    return False
                self._changed.wait(remaining)
        return True

    # ---- remote calls --------------------------------------------------
    def call(
        self,
        target: str,
        fn: str | Callable[..., Any],
        *args: Any,
        timeout: float = 5.0,
        **kwargs: Any,
    ) -> Any:
        """Run ``fn(*args, **kwargs)`` on node ``target`` and return its value.

        ``fn`` is a dotted path (``"pkg.mod.func"``) resolved on the target at
        call time, importing the module if needed, or a function shipped by
        source. ``target`` may be this node (same semantics, no sockets). The
        call runs on the target's worker pool; the caller's thread blocks.

        Raises:
            NodeDown: ``target`` is not connected, or went down during the call.
            CallTimeout: no reply within ``timeout`` seconds (the call may still run).
            RemoteError: the function raised on ``target`` (type, message, traceback).
            NoSuchFunction: ``fn`` does not resolve on ``target``.
            EncodeError: an argument cannot travel (nothing was sent).
        """
        name = self._full_names.get(target)
        if name is None:
            name = self._full_name(target)
        return self._caller.call(name, fn, args, kwargs, timeout)

    def cast(
        self,
        target: str,
        fn: str | Callable[..., Any],
        *args: Any,
        timeout: float = 5.0,
        **kwargs: Any,
    ) -> None:
        """Ask ``target`` to run ``fn(*args, **kwargs)``; do not wait (Erlang's ``rpc:cast``).

        The target drops the request if it arrives after ``timeout`` seconds.

        Raises:
            NodeDown: ``target`` is not connected.
            EncodeError: an argument cannot travel.
        """
        self._caller.cast(full_node_name(target), fn, args, kwargs, timeout)

    def multicall(
        self,
        targets: Iterable[str],
        fn: str | Callable[..., Any],
        *args: Any,
        timeout: float = 5.0,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], dict[str, BaseException]]:
        """Run ``fn`` on every target at once; return ``(results, bad_nodes)``.

        ``results`` maps each node that answered to its value; ``bad_nodes``
        maps every other target to its error (NodeDown, CallTimeout,
        RemoteError, ...). All calls share one ``timeout``.

        Raises:
            EncodeError: an argument cannot travel (nothing was sent).
        """
        names = [full_node_name(t) for t in targets]
        return self._caller.multicall(names, fn, args, kwargs, timeout)

    # ---- extension points ----------------------------------------------
    def register_handler(self, kind: str, handler: Handler) -> None:
        """Hand messages of type ``kind`` to ``handler(sender, message)`` on the I/O thread.

        Messages come from peers or client connections; ``sender`` is the
        routing id to answer with ``send_to``. The handler must not block.

        Raises:
            ConfigError: ``kind`` is built in or already has a handler.
        """
        if kind in _BUILTIN_KINDS or kind in self._handlers:
            raise ConfigError(f"message type {kind!r} already has a handler")
        self._handlers[kind] = handler

    def send_to(self, sender: bytes, message: dict[str, Any]) -> None:
        """Send ``message`` to a peer or client that sent us a message (any thread).

        The message is encoded on the calling thread; delivery is best effort
        (dropped if the sender is gone).

        Raises:
            EncodeError, MessageTooLarge: the message cannot travel.
        """
        # Both ways out (a peer's DEALER, the ROUTER) are usable from any thread.
        self._route(sender, self._encode(message))

    @property
    def version(self) -> str:
        """Release version + fingerprint of the loaded code, e.g. ``v2+3fa9c1d2``."""
        from hotmesh.deploy import node_version

        return node_version()

    @property
    def loop(self) -> Any:
        """The I/O thread's event loop; other threads use only ``call_soon_threadsafe``."""
        return self._io.loop

    # ---- life cycle ----------------------------------------------------
    def stop(self) -> None:
        """Leave the mesh and close every socket and thread (within a second; idempotent)."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        while self._stops:
            stop = self._stops.pop()
            try:
                stop()
            except Exception:
                log.exception("stopping an extension of %s failed", self.name)
        if self._started:
            try:
                self._io.run_sync(self._shutdown_io, timeout=2.0)
            except Exception:
                log.exception("closing the sockets of %s failed", self.name)
        with self._changed:
            self._up = frozenset()  # calls from now on fail at once with NodeDown
        self._caller.close()
        self._lines.close_all()
        self._pool.close()
        self._io.stop()
        self._transport.terminate()
        if self._registered:
            from hotmesh._mesh import registry

            registry.unregister(self.name, pid=os.getpid())
        self._events.stop()
        with _running_lock:
            if self in _running:
                _running.remove(self)
        with self._changed:
            self._changed.notify_all()

    def _open(self) -> None:
        self._io.start()
        self._started = True
        self._events.start()
        self.endpoint = self._transport.open()
        with _running_lock:
            _running.append(self)

    def _join(self, seeds: tuple[str, ...], join_timeout: float) -> None:
        self._io.run_sync(lambda: self._driver.start(seeds))
        if not self._driver.joined.wait(join_timeout):
            log.warning("%s: no seed of %s answered yet; joining when one does", self.name, seeds)
        if self._driver.refusal is not None:
            raise NameInUse(self._driver.refusal)

    def _run_extensions(self) -> None:
        for entry in _EXTENSIONS:
            stop = _resolve_app(entry)(self)
            if callable(stop):
                self._stops.append(stop)

    def _shutdown_io(self) -> None:
        self._driver.stop()
        # Linger briefly so the byes reach the peers before the sockets close.
        self._transport.close(linger=0.2)

    # ---- I/O thread ----------------------------------------------------
    def _on_message(self, routing_id: bytes, message: dict[str, Any]) -> None:
        peer = self._peer_ids.get(routing_id, False)
        if peer is False:
            peer = parse_peer_identity(routing_id)
            if len(self._peer_ids) > 4096:
                self._peer_ids.clear()
            self._peer_ids[routing_id] = peer
        if peer is not None:
            self._driver.traffic(*peer)
        kind = message["t"]
        if kind == "reply":
            if peer is not None:
                self._caller.on_reply(peer[0], message)
        elif kind == "call":
            self._dispatcher.handle(routing_id, message)
        elif kind == "ping":
            pong = {"t": "pong", "node": self.name, "inc": self.incarnation}
            self._route(routing_id, self._encode(pong))
        elif kind in membership.KINDS:
            if peer is not None:
                self._driver.handle(peer[0], peer[1], message)
        elif kind != "pong":
            handler = self._handlers.get(kind)
            if handler is None:
                log.debug("dropped a message of unknown type %r", kind)
                return
            handler(routing_id, message)

    def _route(self, sender: bytes, data: bytes) -> None:
        route = self._routes.get(sender)
        if route is None:
            route = (parse_peer_identity(sender), is_line(sender))
            if len(self._routes) > 4096:
                self._routes.clear()
            self._routes[sender] = route
        peer, line = route
        if peer is None or line:
            # Clients and peers' call lines are answered through the inbox.
            self._transport.reply(sender, data)
        elif self._driver.view.incarnation_of(peer[0]) == peer[1]:
            self._transport.send(peer[0], data)

    def _line_for(self, target: str) -> Line | None:
        endpoint = self._endpoints.get(target)
        incarnation = self._driver.view.incarnation_of(target)
        if not endpoint or not incarnation:
            return None
        return self._lines.line_for(target, endpoint, incarnation)

    def _send_peer(self, target: str, data: bytes) -> None:
        self._transport.send(target, data)

    def _node_up(self, name: str) -> None:
        endpoint = self._driver.view.endpoint_of(name)
        with self._changed:
            if endpoint:
                self._endpoints[name] = endpoint
            self._up = self._up | {name}
            self._changed.notify_all()
        self._events.emit("nodeup", name)

    def _node_down(self, name: str, reason: str) -> None:
        with self._changed:
            self._up = self._up - {name}
            self._changed.notify_all()
        self._caller.node_down(name)
        self._events.emit("nodedown", name)

    # ---- helpers -------------------------------------------------------
    def _full_name(self, target: str) -> str:
        name = full_node_name(target)
        if len(self._full_names) > 4096:
            self._full_names.clear()
        self._full_names[target] = name
        return name

    def _encode(self, message: dict[str, Any]) -> bytes:
        return encode_frame(message, max_size=self.max_message_size)

    def _run_local(
        self, message: dict[str, Any], deliver: Callable[[dict[str, Any]], None]
    ) -> None:
        if self._stopped:
            raise NodeDown(self.name, "this node stopped")
        self._dispatcher.run_local(message, deliver, self._encode)
