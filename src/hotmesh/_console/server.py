"""The console server inside every node: console protocol messages in, sessions
out (I/O only through the node's handlers and ``send_to``; the audit log)."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotmesh._console import hooks, protocol
from hotmesh._console.audit import AuditLog
from hotmesh._console.leases import Detach, LeaseBook, Reap
from hotmesh._console.output import Outbox
from hotmesh._console.timers import Timers
from hotmesh._hashes import token_hex
from hotmesh._runtime import Handler, NodeLike
from hotmesh.deploy.notices import add_notice_listener

if TYPE_CHECKING:
    # Imported when first used (a console opens, a completion is asked for, code
    # is shipped): every node starts a console server, few ever serve a session.
    from hotmesh._console.completion import CompletionService
    from hotmesh._console.session import Session

_log = logging.getLogger("hotmesh.console")
# Messages a session may have sent and not had acknowledged: 256 output messages
# of 16 Ki characters at most, well under the ROUTER's queue of 1,000 messages
# per client, beyond which libzmq would drop them.
MAX_WINDOW = 256
# Console servers running in this process (several nodes may share it).
_servers: set[ConsoleServer] = set()
_servers_lock = threading.Lock()


class _Attached:
    """A session plus what the server knows about its client."""

    session: Session

    def __init__(self, sender: bytes, client: dict[str, Any]) -> None:
        self.sender = sender
        self.client = client
        self.since = time.time()


class ConsoleServer:
    """Serves console sessions on a node through its message handlers.

    Handlers run on the node's I/O thread and only hand work on: statements
    to the session's worker, completions to the completion pool; interrupts,
    pings and input answers act at once. See docs/reference/console-protocol.md.
    """

    def __init__(
        self,
        node: NodeLike,
        *,
        lease: float = 10.0,
        idle_timeout: float = 60.0,
        tick: float = 1.0,
        audit_path: Path | None = None,
    ) -> None:
        self._node = node
        self._tick = tick
        self._leases = LeaseBook(lease, idle_timeout)
        self._sessions: dict[str, _Attached] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        path = audit_path or Path(node.state_dir) / "audit.log"
        self.audit = AuditLog(path, node.name)
        self._timers: Timers | None = None
        self._completions: CompletionService | None = None
        self._checking = False  # a lease check is due (only while sessions exist)
        self._unlisten: Callable[[], None] = lambda: None

    def start(self) -> None:
        """Install the console hooks, ``open`` and register the handlers.

        A node does not: its ``ConsoleFront`` installs the hooks as it starts
        and makes the server at the first console message.
        """
        hooks.install()
        self.open()
        for kind, handler in self.handlers().items():
            self._node.register_handler(kind, handler)

    def open(self) -> None:
        """Start serving: the timers, the list of servers, the deploy notices."""
        self._timers = Timers()
        with _servers_lock:
            _servers.add(self)
        self._unlisten = add_notice_listener(self._on_notice)

    def handlers(self) -> dict[str, Handler]:
        """The handler of every kind this server handles (``protocol.node_kinds()``)."""
        handlers: dict[str, Handler] = {
            protocol.OPEN: self._on_open,
            protocol.EXEC: self._on_exec,
            protocol.INTERRUPT: self._on_interrupt,
            protocol.INPUT_REPLY: self._on_input_reply,
            protocol.COMPLETE: self._on_complete,
            protocol.PING: self._on_ping,
            protocol.CLOSE: self._on_close,
            protocol.WHERE: self._on_where,
            protocol.ACK: self._on_ack,
            protocol.ABANDON: self._on_abandon,
        }
        return {kind: self._guarded(kind, handler) for kind, handler in handlers.items()}

    def stop(self) -> None:
        """``close``, and take out the hooks ``start`` installed."""
        if self.close():
            hooks.uninstall()

    def close(self) -> bool:
        """End every session (running statements are interrupted) and undo ``open``.

        Returns False when it was closed already. Messages after it are
        answered with an error.
        """
        if self._stopped.is_set():
            return False
        self._stopped.set()
        self._unlisten()
        with self._lock:
            attached = list(self._sessions.values())
            self._sessions.clear()
        for entry in attached:
            self._audit_detach(entry, "node stopping")
            # A session running node().stop(confirm=True) is the one stopping
            # us: interrupting it would abort the stop half-way.
            if not entry.session.is_current_thread():
                entry.session.interrupt()
            entry.session.close()
        for entry in attached:
            if not entry.session.is_current_thread():
                entry.session.wait_ended(0.5)
        with self._lock:
            completions, self._completions = self._completions, None
        if completions is not None:
            completions.stop()
        if self._timers is not None:
            self._timers.stop()
        with _servers_lock:
            _servers.discard(self)
        return True

    def session_count(self) -> int:
        with self._lock:
            return len(self._sessions)

    def sessions(self) -> list[dict[str, Any]]:
        """The attached consoles: sid, the client's user/host/pid/via, since (Unix
        time), busy (a statement runs or waits) and detached (its lease expired)."""
        with self._lock:
            entries = list(self._sessions.items())
            detached = {sid for sid, _ in entries if self._leases.is_detached(sid)}
        return [
            {
                "sid": sid,
                **entry.client,
                "since": round(entry.since, 3),
                "busy": entry.session.is_busy,
                "detached": sid in detached,
            }
            for sid, entry in entries
        ]

    # -- handlers (I/O thread) -------------------------------------------------

    def _guarded(self, kind: str, handler: Handler) -> Handler:
        def guarded(sender: bytes, message: dict[str, Any]) -> None:
            if self._stopped.is_set():
                self._reply(sender, message, protocol.error("console stopped"))
                return
            try:
                handler(sender, message)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                _log.warning("malformed %s message dropped: %s", kind, exc)
                self._reply(sender, message, protocol.error(f"bad {kind}: {exc}"))

        return guarded

    def _on_open(self, sender: bytes, message: dict[str, Any]) -> None:
        sid = token_hex(6)
        client = {
            "user": str(message.get("user", "?")),
            "host": str(message.get("host", "?")),
            "pid": message.get("pid"),
            "via": str(message.get("via", "attach")),
        }
        entry = _Attached(sender, client)
        assert self._timers is not None
        window = _window(message.get("window"))
        # The outbox reads entry.sender at each send, so output follows a reconnected client.
        outbox = Outbox(
            sid, lambda m: self._node.send_to(entry.sender, m), self._timers, window=window
        )
        opened = protocol.opened(
            message.get("rid", 0),
            node=self._node.name,
            pid=os.getpid(),
            python=sys.version.split()[0],
            window=window,
        )

        def started() -> None:
            # On the session's worker: the audit write and the namespace
            # (which imports the code server) stay off the I/O thread.
            self.audit.write({"event": "attach", "sid": sid, **client})
            outbox.send(opened)

        from hotmesh._console.helpers import make_namespace
        from hotmesh._console.session import Session

        entry.session = Session(
            sid,
            lambda: make_namespace(lambda: self._node),
            outbox,
            audit=self.audit.write,
            on_end=self._session_ended,
            on_start=started,
            width=_width(message.get("width")),
        )
        with self._lock:
            self._sessions[sid] = entry
            self._leases.heard(sid, time.monotonic())
            self._check_leases_later()
        entry.session.start()

    def _on_exec(self, sender: bytes, message: dict[str, Any]) -> None:
        entry = self._find(sender, message)
        if entry is not None:
            code = message["code"]
            if not isinstance(code, str):
                raise TypeError("code must be a string")
            name = message.get("name") or ""
            entry.session.submit(int(message["rid"]), code, str(name)[:200])

    def _on_interrupt(self, sender: bytes, message: dict[str, Any]) -> None:
        entry = self._find(sender, message)
        if entry is not None:
            rid = message.get("rid")
            if entry.session.interrupt(None if rid is None else int(rid)):
                self.audit.write({"event": "interrupt", "sid": entry.session.sid, "rid": rid})

    def _on_input_reply(self, sender: bytes, message: dict[str, Any]) -> None:
        entry = self._find(sender, message)
        if entry is not None:
            text = message.get("text", "")
            entry.session.answer(int(message["rid"]), str(text), bool(message.get("eof")))

    def _on_complete(self, sender: bytes, message: dict[str, Any]) -> None:
        entry = self._find(sender, message, retarget=False)
        if entry is None:
            return
        completions = self._completion_service()
        if completions is None:
            return
        sid, rid = entry.session.sid, message["rid"]

        def reply(items: list[tuple[str, int, str]], status: str) -> None:
            self._send(sender, protocol.completions(sid, rid, items, status))

        code, pos = str(message["code"]), int(message["pos"])
        completions.request(entry.session.namespace, code, pos, reply)

    def _completion_service(self) -> CompletionService | None:
        """The completion service, made at the first request (None once stopped)."""
        from hotmesh._console.completion import CompletionService

        with self._lock:
            if self._completions is None and not self._stopped.is_set():
                assert self._timers is not None
                self._completions = CompletionService(self._timers)
            return self._completions

    def _on_ping(self, sender: bytes, message: dict[str, Any]) -> None:
        entry = self._find(sender, message)
        if entry is not None:
            busy = entry.session.is_busy
            self._send(sender, protocol.pong(entry.session.sid, busy))

    def _on_where(self, sender: bytes, message: dict[str, Any]) -> None:
        entry = self._find(sender, message)
        if entry is not None:
            self._reply(sender, message, protocol.where_reply(entry.session.stack()))

    def _on_ack(self, sender: bytes, message: dict[str, Any]) -> None:
        entry = self._find(sender, message)
        if entry is not None:
            entry.session.outbox.acked(int(message["seq"]))

    def _on_abandon(self, sender: bytes, message: dict[str, Any]) -> None:
        entry = self._find(sender, message)
        if entry is None:
            return
        rid = int(message["rid"])
        thread = entry.session.abandon(rid)
        if thread is not None:
            self.audit.write({"event": "abandon", "sid": entry.session.sid, "rid": rid})
            entry.session.outbox.send(protocol.abandoned(rid, thread))

    def _on_close(self, sender: bytes, message: dict[str, Any]) -> None:
        entry = self._find(sender, message)
        if entry is None:
            return
        self._end(entry, "client detached")
        self._reply(sender, message, protocol.closed())

    # -- helpers ---------------------------------------------------------------

    def _find(
        self, sender: bytes, message: dict[str, Any], *, retarget: bool = True
    ) -> _Attached | None:
        sid = message.get("sid")
        back = False
        with self._lock:
            entry = self._sessions.get(sid) if isinstance(sid, str) else None
            if entry is not None and isinstance(sid, str):
                back = self._leases.is_detached(sid)
                self._leases.heard(sid, time.monotonic())
        if entry is not None and back:
            entry.session.outbox.reattach()
        if entry is None:
            error = f"no console session {sid!r} on {self._node.name} (it ended or was reaped)"
            self._reply(sender, message, protocol.error(error, gone=True))
            return None
        if retarget and entry.sender != sender:
            # The client reconnected: output follows it to its new connection.
            entry.sender = sender
        return entry

    def _end(self, entry: _Attached, reason: str) -> None:
        with self._lock:
            present = self._sessions.pop(entry.session.sid, None) is not None
            self._leases.forget(entry.session.sid)
        if present:
            self._audit_detach(entry, reason)
            entry.session.close()

    def _session_ended(self, session: Session) -> None:
        # The worker ended by itself: exit() in a statement.
        with self._lock:
            entry = self._sessions.pop(session.sid, None)
            self._leases.forget(session.sid)
        if entry is not None:
            self._audit_detach(entry, "exit")

    def _audit_detach(self, entry: _Attached, reason: str) -> None:
        self.audit.write(
            {"event": "detach", "sid": entry.session.sid, "reason": reason, **entry.client}
        )

    def _check_leases_later(self) -> None:
        """Check the leases in a tick, unless a check is due already (under ``_lock``).

        Checks run only while sessions exist: every node has a console server,
        and an idle mesh of 64 nodes spent 6 ms of CPU a second checking no
        leases.
        """
        if not self._checking and self._timers is not None:
            self._checking = True
            self._timers.call_later(self._tick, self._check_leases)

    def _check_leases(self) -> None:
        if self._stopped.is_set():
            return
        with self._lock:
            self._checking = False
            busy = {sid for sid, e in self._sessions.items() if e.session.is_busy}
            effects = self._leases.tick(time.monotonic(), busy)
            entries = dict(self._sessions)
        for effect in effects:
            entry = entries.get(effect.sid)
            if entry is None:
                continue
            if isinstance(effect, Detach):
                self.audit.write(
                    {"event": "lease expired", "sid": effect.sid, "busy": effect.sid in busy}
                )
                # Its statement goes on without waiting for a client that may be gone.
                entry.session.outbox.detach()
            elif isinstance(effect, Reap):
                self._end(entry, "lease expired")
        with self._lock:
            if self._sessions:
                self._check_leases_later()

    def _on_notice(self, node: str, text: str) -> None:
        """Push a deploy notice about this node (airbag, newcomers) to every attached session."""
        if node != self._node.name:
            return
        with self._lock:
            attached = list(self._sessions.values())
        for entry in attached:
            self._send(entry.sender, protocol.notice(entry.session.sid, text))

    def _reply(self, sender: bytes, message: dict[str, Any], answer: dict[str, Any]) -> None:
        answer.setdefault("rid", message.get("rid") if isinstance(message, dict) else None)
        answer.setdefault("sid", message.get("sid") if isinstance(message, dict) else None)
        self._send(sender, answer)

    def _send(self, sender: bytes, message: dict[str, Any]) -> None:
        try:
            self._node.send_to(sender, message)
        except Exception as exc:
            _log.debug("console reply to a vanished client dropped: %s", exc)


def servers_of(node: object) -> list[ConsoleServer]:
    """The console servers running for ``node`` in this process."""
    with _servers_lock:
        return [server for server in _servers if server._node is node]


def _width(asked: object) -> int:
    """The width results are laid out in: the client's terminal, within reason."""
    if isinstance(asked, int) and not isinstance(asked, bool):
        return max(20, min(asked, 1000))
    return 80


def _window(asked: object) -> int | None:
    """The flow-control window for a client that asked for ``asked`` messages."""
    if not isinstance(asked, int) or isinstance(asked, bool) or asked <= 0:
        return None  # a client that does not acknowledge: no flow control
    return max(4, min(asked, MAX_WINDOW))
