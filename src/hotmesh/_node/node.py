"""``Node``: a running mesh member, its public methods and life cycle (threads and sockets).

The node builds every layer below it (transport, membership, call lines,
workers, dispatcher, caller, router); ``hotmesh._node.startup.start`` opens them
(``_open``, ``_start_extensions``) and ``stop()`` closes them. Messages go
through its ``Router``, calls through its ``Caller``.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hotmesh._errors import NameInUse
from hotmesh._hashes import token_hex
from hotmesh._membership import driver as membership
from hotmesh._membership.events import MonitorCallback, NodeEvents
from hotmesh._membership.seeds import SeedSource
from hotmesh._mesh import registry
from hotmesh._mesh.iothread import IOThread, PollLoop
from hotmesh._mesh.lines import CallLines
from hotmesh._mesh.transport import Transport, peer_identity
from hotmesh._node.extensions import start_extensions
from hotmesh._node.options import NodeOptions
from hotmesh._node.router import Router
from hotmesh._paths import full_node_name, node_state_dir
from hotmesh._rpc.caller import Caller
from hotmesh._rpc.dispatch import Dispatcher
from hotmesh._rpc.workers import WorkerPool
from hotmesh._runtime import Handler, add_running, remove_running
from hotmesh.deploy.versions import node_version

log = logging.getLogger("hotmesh.node")

_MAX_LINES = 256  # call lines (thread, peer) per node; beyond, calls share the DEALERs


class Node:
    """A running hotmesh node: a member of the mesh that answers remote calls.

    Create it with ``hotmesh.start()``. Thread-safe: every method may be called
    from any thread except the node's I/O thread (where only ``send_to`` and
    ``register_handler`` are allowed).
    """

    def __init__(self, options: NodeOptions, *, keys: tuple[bytes, bytes]) -> None:
        name = options.full_name
        self.name = name
        self.incarnation = f"{time.time_ns():x}-{token_hex(3)}"
        self.tick = options.tick
        self.max_message_size = options.max_message_size
        self.state_dir = Path(options.state_dir) if options.state_dir else node_state_dir(name)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.options = options
        self._io = IOThread()
        self._router = Router(
            name, self.incarnation, max_message_size=self.max_message_size, io=self._io
        )
        self._pool = WorkerPool(options.max_workers)
        self._transport = Transport(
            self._io,
            identity=peer_identity(name, self.incarnation),
            listen=options.listen,
            keys=keys,
            max_message_size=self.max_message_size,
            tick=options.timing,
            on_input=self._pool.poke,
            reader_asleep=self._pool.asleep,
            flush=self._router.flush,
        )
        self._driver = membership.MembershipDriver(
            self._transport,
            name=name,
            incarnation=self.incarnation,
            tick=options.timing,
            encode=self._router.encode,
            on_up=self._node_up,
            on_down=self._node_down,
        )
        self._lines = CallLines(
            self._transport.context, name, self.incarnation, keys, cap=_MAX_LINES
        )
        self._dispatcher = Dispatcher(self, self._pool, self._router.reply)
        self._caller = Caller(name, self._router)
        self._router.connect(
            self._transport, self._driver, self._lines, self._dispatcher, self._caller
        )
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
        return sorted(self._router.up)

    def lost_nodes(self) -> dict[str, str]:
        """Peers this node lost and keeps redialling: name -> why, with how long ago
        (``"down 42 s (connection closed)"``; a member heard of but never reached:
        ``"not connected for 3 s (never connected)"``).

        Not ``nodes()``: a node is listed from its nodedown until it is up again,
        or forgotten (10 minutes). A node that stopped cleanly, or lost its name,
        is not redialled and not listed.
        """
        if not self.is_alive():
            return {}
        lost = self._io.run_sync(lambda: self._driver.view.lost_since(time.monotonic()))
        return {
            name: f"{'not connected' if why == 'never connected' else 'down'} "
            f"{seconds:.0f} s ({why})"
            for name, (seconds, why) in sorted(lost.items())
        }

    def is_alive(self) -> bool:
        """Whether the node runs (started and not stopped)."""
        return self._started and not self._stopped

    def endpoint_of(self, name: str) -> str | None:
        """The endpoint of this node or of a connected peer; None when unknown."""
        if name == self.name:
            return self.endpoint
        return self._router.endpoints.get(name) if name in self._router.up else None

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
            while not (wanted <= self._router.up and len(self._router.up) >= count):
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
            NodeStopped: this node has stopped, or stopped during the call.
            CallTimeout: no reply within ``timeout`` seconds (the call may still run).
            RemoteError: the function raised on ``target`` (type, message, traceback).
            NoSuchFunction: ``fn`` does not resolve on ``target``.
            EncodeError: an argument cannot travel (nothing was sent).
        """
        return self._caller.call(self._router.full_name(target), fn, args, kwargs, timeout)

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
            NodeStopped: this node has stopped.
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
        maps every other target to its error (NodeDown, NodeStopped,
        CallTimeout, RemoteError, ...). All calls share one ``timeout``.

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
        self._router.register(kind, handler)

    def send_to(self, sender: bytes, message: dict[str, Any]) -> None:
        """Send ``message`` to a peer or client that sent us a message (any thread).

        The message is encoded on the calling thread; delivery is best effort
        (dropped if the sender is gone).

        Raises:
            EncodeError, MessageTooLarge: the message cannot travel.
        """
        # Both ways out (a peer's DEALER, the ROUTER) are usable from any thread.
        self._router.send_to(sender, message)

    @property
    def version(self) -> str:
        """Release version + fingerprint of the loaded code, e.g. ``v2+3fa9c1d2``."""
        return node_version()

    @property
    def loop(self) -> PollLoop:
        """The I/O thread's event loop; other threads use only ``call_soon_threadsafe``."""
        return self._io.loop

    # ---- life cycle ----------------------------------------------------
    def stop(self) -> None:
        """Leave the mesh and close every socket and thread (within a second; idempotent)."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
            self._router.stopped = True
        while self._stops:
            stop = self._stops.pop()
            try:
                stop()
            except Exception:
                log.exception("stopping an extension of %s failed", self.name)
        if self._started:
            self._pool.stop_serving()
            try:
                self._io.run_sync(self._shutdown_io, timeout=2.0)
            except Exception:
                log.exception("closing the sockets of %s failed", self.name)
        self._caller.close()  # calls from now on fail at once with NodeStopped
        with self._changed:
            self._router.up = frozenset()
        self._lines.close_all()
        self._pool.close()
        self._io.stop()
        self._transport.terminate()
        if self._registered:
            registry.unregister(self.name, pid=os.getpid())
        self._events.stop()
        remove_running(self)
        with self._changed:
            self._changed.notify_all()

    def _open(self, seeds: SeedSource, join_timeout: float) -> None:
        """Bind, register on this host and join the mesh (``start()`` calls it).

        Raises:
            NameInUse: a live process of this host or a mesh member has the name.
            TransportError: the listen endpoint cannot be bound.
        """
        self._io.start()
        self._started = True
        self._events.start()
        self.endpoint = self._transport.open()
        # From now on the worker pool's leader thread reads the inbox.
        self._pool.serve(
            self._transport.inbox_fd,
            self._router.drain,
            signalled=functools.partial(self._router.drain, True),
        )
        add_running(self)
        # The registry refuses a name held by a live process of this host: fail
        # fast, before the mesh hears of us.
        registry.register(self.name, self.endpoint, pid=os.getpid(), state_dir=str(self.state_dir))
        self._registered = True
        self._io.run_sync(lambda: self._driver.start(seeds))
        if join_timeout > 0:
            if not self._driver.joined.wait(join_timeout):
                self._io.run_sync(self._warn_not_joined)
        else:
            # The caller does not wait (a prefork worker joining in the
            # background): say so only if it is still alone after two ticks.
            self._io.loop.call_later(2 * self.options.tick, self._warn_not_joined)
        if self._driver.refusal is not None:
            raise NameInUse(self._driver.refusal)

    def _warn_not_joined(self) -> None:
        """Log that no seed answered, naming those that refused us (I/O thread)."""
        if self._driver.joined.is_set() or self._stopped:
            return
        refused = self._driver.refused_seeds()
        log.warning(
            "%s: no seed of %s answered yet%s; joining when one does",
            self.name,
            ", ".join(map(str, self.options.seeds)) or "(none)",
            f" ({', '.join(refused)} refused our handshake: another cookie?)" if refused else "",
        )

    def _start_extensions(self) -> None:
        """Start settings, deploy and the console for this node (``start()`` calls it)."""
        start_extensions(self, self._stops)

    def _shutdown_io(self) -> None:
        self._driver.stop()
        # Linger briefly so the byes reach the peers before the sockets close.
        self._transport.close(linger=0.2)

    # ---- membership events (I/O thread) --------------------------------
    def _node_up(self, name: str) -> None:
        endpoint = self._driver.view.endpoint_of(name)
        with self._changed:
            if endpoint:
                self._router.endpoints[name] = endpoint
            self._router.up = self._router.up | {name}
            self._changed.notify_all()
        self._events.emit("nodeup", name)

    def _node_down(self, name: str, reason: str) -> None:
        with self._changed:
            self._router.up = self._router.up - {name}
            self._changed.notify_all()
        self._caller.node_down(name)
        self._events.emit("nodedown", name)
