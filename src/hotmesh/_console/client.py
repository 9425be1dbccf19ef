"""The client side of one console session over a connection: open, execute with
streamed output, input, interrupt, completion, lease pings (network I/O through
the connection object it is given)."""

from __future__ import annotations

import contextlib
import getpass
import itertools
import os
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from hotmesh._console import protocol
from hotmesh._console.protocol import Message
from hotmesh._errors import ConsoleError, HotmeshError, SessionClosed

# Messages the node may send before it waits for our acknowledgement.
WINDOW = 64
# Seconds an interrupted statement gets to stop before it is reported stuck.
STOP_GRACE = 1.0
# Seconds to wait for the node to confirm that it left a statement running.
ABANDON_TIMEOUT = 5.0


class Link(Protocol):
    """What the client needs from a connection (``hotmesh._mesh.client.Connection``)."""

    def send(self, message: Message) -> None: ...
    def recv(self, timeout: float) -> Message | None: ...
    def close(self) -> None: ...
    def gone_for(self) -> float: ...


@dataclass(frozen=True)
class SessionInfo:
    """What the node said when the session opened."""

    sid: str
    node: str
    pid: int
    python: str


@dataclass
class Outcome:
    """How a statement ended: status 'ok', 'error', 'interrupted', 'exit', or
    'abandoned' (left running on the node after it did not stop).

    ``exit_code`` is the status an 'exit' asked for (``sys.exit(3)`` gives 3,
    ``exit()`` 0), as the Python command would exit with.
    """

    status: str
    exc_type: str = ""
    traceback: str = ""
    duration: float = 0.0
    results: list[str] = field(default_factory=list)
    exit_code: int = 0

    thread: str = ""  # for 'abandoned': the node thread the statement still runs on

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def as_output(notice: Message) -> Message:
    """A node's notice as a line of stderr output, shown like late output."""
    return protocol.out(0, "stderr", f"[{notice.get('text', '')}]\n")


def _write_default(name: str, text: str) -> None:
    stream = sys.stderr if name == "stderr" else sys.stdout
    stream.write(text)
    stream.flush()


class ConsoleClient:
    """One console session on one node, driven from any thread.

    One thread at a time reads the connection (whoever waits, or the keeper
    thread when nobody does) and hands messages to their waiters by request
    id. Every message renews the session's lease on the node; a ping goes out
    every ``ping_interval`` seconds, and a node silent for ``silence_limit``
    seconds is reported with SessionClosed; so is a node that closed the
    connection (its process died, or it restarted) and has not taken it back
    within ``gone_limit`` seconds, sooner than its silence would tell.
    """

    def __init__(
        self,
        link: Link,
        *,
        ping_interval: float = 2.0,
        silence_limit: float = 8.0,
        gone_limit: float = 2.0,
        on_unsolicited: Callable[[Message], None] | None = None,
    ) -> None:
        self._link = link
        self._ping_interval = ping_interval
        self._silence_limit = silence_limit
        self._gone_limit = gone_limit
        self.on_unsolicited = on_unsolicited or self._print_late
        # Called from the lease thread when the node is lost while nobody waits.
        self.on_lost: Callable[[str], None] = lambda reason: None
        self._lock = threading.Lock()
        self._waiters: dict[int, queue.SimpleQueue[Message]] = {}
        self._rids = itertools.count(1)
        self._last_heard = time.monotonic()
        self._next_ping = 0.0
        self._closed: str | None = None
        self._keeper: threading.Thread | None = None
        self._stop = threading.Event()
        self._sigints = 0
        self._sigints_handled = 0
        self._reading_input = False
        self._counting = False
        self._handled_seq = 0
        self._acked_seq = 0
        self._ack_every = 1 << 62
        self.info: SessionInfo | None = None

    @classmethod
    def connect(cls, endpoint: str, cookie: str | None = None, **kwargs: Any) -> ConsoleClient:
        """A client over a new authenticated connection to ``endpoint``."""
        from hotmesh._mesh.client import Connection

        return cls(Connection(endpoint, cookie), **kwargs)

    @property
    def node(self) -> str:
        return self.info.node if self.info else "?"

    # -- session ---------------------------------------------------------------

    def open(
        self, *, via: str = "attach", timeout: float = 10.0, width: int | None = None
    ) -> SessionInfo:
        """Open the session; starts the lease keeper.

        Raises:
            SessionClosed: no answer within ``timeout`` (wrong cookie, or no
                node at that endpoint: CURVE drops unauthenticated peers
                silently, so both look the same).
        """
        rid = next(self._rids)
        waiter = self._register(rid)
        hello = protocol.open_request(
            rid,
            user=_user(),
            host=socket.gethostname(),
            pid=os.getpid(),
            via=via,
            window=WINDOW,
            width=width,
        )
        self._last_heard = time.monotonic()
        self._send(hello)
        try:
            reply = self._wait(waiter, deadline=time.monotonic() + timeout, opening=True)
        finally:
            self._waiters.pop(rid, None)
        if reply.get("t") != protocol.OPENED:
            raise ConsoleError(f"the node refused the console: {reply.get('error', reply)}")
        self.info = SessionInfo(reply["sid"], reply["node"], reply["pid"], reply["python"])
        window = reply.get("window")
        # A node without flow control never needs an ack; one with it gets one
        # every quarter window, so it never waits for us while we keep up.
        self._ack_every = max(1, int(window) // 4) if isinstance(window, int) else 1 << 62
        self._keeper = threading.Thread(target=self._keep, name="hotmesh-console-lease")
        self._keeper.daemon = True
        self._keeper.start()
        return self.info

    def execute(
        self,
        code: str,
        *,
        on_output: Callable[[str, str], None] = _write_default,
        on_result: Callable[[str], None] | None = None,
        on_input: Callable[[], str | None] | None = None,
        name: str = "",
    ) -> Outcome:
        """Run cell ``code`` on the node and wait for its outcome, streaming output.

        Ctrl-C (SIGINT on the main thread) interrupts the remote statement,
        once: more presses in the next ``STOP_GRACE`` seconds change nothing.
        A statement still running then is reported with where it is stuck
        (``on_output``, stderr); a Ctrl-C after that report leaves it running
        on the node and the session goes on in a fresh thread: the outcome is
        then 'abandoned' (its later output and outcome reach
        ``on_unsolicited``). Should the node not even answer that, the call
        raises KeyboardInterrupt.
        ``on_input`` answers ``input()`` (None means end of file); ``name``
        (a snippet's file name) shows in the remote tracebacks.

        Raises:
            SessionClosed: the session ended or the node stopped answering.
        """
        info = self._require_open()
        rid = next(self._rids)
        waiter = self._register(rid)
        statement = _Statement(self, info.sid, rid, on_output, on_result, on_input)
        with self._sigint_counter():
            self._sigints_handled = self._sigints  # presses before it started don't count
            self._send(protocol.exec_request(info.sid, rid, code, name))
            try:
                while statement.outcome is None:
                    try:
                        message = self._wait(waiter, watch_sigint=True, deadline=statement.deadline)
                    except KeyboardInterrupt:
                        statement.pressed()
                        continue
                    except TimeoutError:
                        statement.overdue()
                        continue
                    handler = statement.handlers.get(message.get("t", ""))
                    if handler is not None:
                        handler(message)
                return statement.outcome
            finally:
                self._waiters.pop(rid, None)

    def interrupt(self) -> None:
        """Interrupt whatever statement runs in this session."""
        info = self._require_open()
        self._send(protocol.interrupt_request(info.sid))

    def where(self, timeout: float = 5.0) -> str:
        """The frames of the statement running in this session ('' when idle)."""
        info = self._require_open()
        rid = next(self._rids)
        waiter = self._register(rid)
        self._send(protocol.where_request(info.sid, rid))
        try:
            reply = self._wait(waiter, deadline=time.monotonic() + timeout)
        finally:
            self._waiters.pop(rid, None)
        return str(reply.get("stack", ""))

    def complete(self, code: str, pos: int, timeout: float = 6.0) -> list[tuple[str, int, str]]:
        """Completions ``(name, start, kind)`` at ``pos`` of ``code``; empty on timeout."""
        info = self._require_open()
        rid = next(self._rids)
        waiter = self._register(rid)
        self._send(protocol.complete_request(info.sid, rid, code, pos))
        try:
            reply = self._wait(waiter, deadline=time.monotonic() + timeout)
        except TimeoutError:
            return []
        finally:
            self._waiters.pop(rid, None)
        if reply.get("t") != protocol.COMPLETIONS:
            return []
        return [(str(n), int(s), str(k)) for n, s, k in reply.get("items", ())]

    def close(self, timeout: float = 2.0) -> None:
        """Detach: end the session on the node (if still there) and close the connection."""
        self._stop.set()
        if self.info is not None and self._closed is None:
            rid = next(self._rids)
            waiter = self._register(rid)
            try:
                self._send(protocol.close_request(self.info.sid, rid))
                self._wait(waiter, deadline=time.monotonic() + timeout, kinds={protocol.CLOSED})
            except (HotmeshError, TimeoutError):
                pass  # the node or the connection is already gone: nothing to end
        self._closed = self._closed or "detached"
        if self._keeper is not None and self._keeper is not threading.current_thread():
            self._keeper.join(timeout=1.0)
        with self._lock:
            self._link.close()

    # -- plumbing --------------------------------------------------------------

    def _require_open(self) -> SessionInfo:
        if self._closed is not None:
            raise SessionClosed(f"console session on {self.node} is closed: {self._closed}")
        if self.info is None:
            raise SessionClosed("console session not opened")
        return self.info

    def _register(self, rid: int) -> queue.SimpleQueue[Message]:
        waiter: queue.SimpleQueue[Message] = queue.SimpleQueue()
        self._waiters[rid] = waiter
        return waiter

    def _send(self, message: Message) -> None:
        with self._lock:
            self._link.send(message)

    def _wait(
        self,
        waiter: queue.SimpleQueue[Message],
        *,
        deadline: float | None = None,
        opening: bool = False,
        watch_sigint: bool = False,
        kinds: set[str] | None = None,
    ) -> Message:
        while True:
            try:
                message = waiter.get_nowait()
            except queue.Empty:
                pass
            else:
                self._handled(message)
                kind = message.get("t")
                if kinds is None or kind in kinds or kind == protocol.ERROR:
                    return message
                continue
            if watch_sigint and self._sigints > self._sigints_handled:
                self._sigints_handled += 1
                raise KeyboardInterrupt
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                if opening:
                    raise SessionClosed(
                        "no answer from the node: is the endpoint right and the cookie the "
                        "cluster's? (a node drops clients with a wrong cookie without a word)"
                    )
                raise TimeoutError
            if not opening and (why := self._gone(now)) is not None:
                self._closed = "the node stopped answering"
                raise SessionClosed(why)
            if self._lock.acquire(timeout=0.05):
                try:
                    if waiter.empty():
                        self._pump_locked(0.05)
                finally:
                    self._lock.release()

    def _pump_locked(self, timeout: float) -> None:
        now = time.monotonic()
        if self.info is not None and now >= self._next_ping and self._closed is None:
            self._next_ping = now + self._ping_interval
            self._link.send(protocol.ping(self.info.sid))
        message = self._link.recv(timeout)
        if message is None:
            return
        self._last_heard = time.monotonic()
        rid = message.get("rid")
        waiter = self._waiters.get(rid) if isinstance(rid, int) else None
        if waiter is not None:
            waiter.put(message)
            return
        if message.get("t") == protocol.ERROR and message.get("gone"):
            self._closed = str(message.get("error"))
        elif message.get("t") in protocol.late_kinds():
            self.on_unsolicited(message)
        self._handled(message, locked=True)

    def _handled(self, message: Message, *, locked: bool = False) -> None:
        """Flow control: acknowledge what was handled, a quarter window at a time.

        Messages are acknowledged once handed to their handler, not when
        received, so a slow consumer (a terminal) slows the node's statement
        down instead of piling messages up here.
        """
        seq = message.get("seq")
        if not isinstance(seq, int) or seq <= self._handled_seq:
            return
        self._handled_seq = seq
        if self.info is None or seq - self._acked_seq < self._ack_every:
            return
        self._acked_seq = seq
        ack = protocol.ack(self.info.sid, seq)
        if locked:
            self._link.send(ack)
        else:
            self._send(ack)

    def _keep(self) -> None:
        # Renews the lease and takes late output while nobody else reads;
        # reports a node gone silent even while the engineer sits at the prompt.
        while not self._stop.wait(min(0.25, self._ping_interval / 2)):
            if self._closed is not None:
                return
            if self._lock.acquire(blocking=False):
                try:
                    self._pump_locked(0.0)
                except Exception as exc:
                    self._lost(f"the connection to {self.node} failed: {exc}")
                    return
                finally:
                    self._lock.release()
            why = self._gone(time.monotonic())
            if why is not None and self._closed is None:
                self._lost(why)
                return

    def _gone(self, now: float) -> str | None:
        """Why the node is taken for gone, or None: silent too long, or its
        connection closed and not taken back."""
        gone = self._link.gone_for()
        if gone > self._gone_limit:
            return (
                f"node {self.node} stopped answering (its connection closed {gone:.0f} s ago "
                "and did not come back): it stopped, was killed or restarted"
            )
        silent = now - self._last_heard
        if silent > self._silence_limit:
            return (
                f"node {self.node} stopped answering (nothing heard for {silent:.0f} s): "
                "it may be down or unreachable"
            )
        return None

    def _lost(self, reason: str) -> None:
        self._closed = reason
        self.on_lost(reason)

    def _error(self, message: Message) -> ConsoleError:
        if message.get("gone"):
            self._closed = str(message.get("error"))
            return SessionClosed(str(message.get("error")))
        return ConsoleError(str(message.get("error")))

    @contextlib.contextmanager
    def _sigint_counter(self) -> Iterator[None]:
        # On the main thread Ctrl-C is counted, not raised: a KeyboardInterrupt
        # landing between a receive and its dispatch would lose a message.
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        if self._counting:
            yield  # already counting (the attached console counts all along)
            return

        def count(signum: int, frame: Any) -> None:
            if self._reading_input:
                raise KeyboardInterrupt  # ends a blocking read of the answer
            self._sigints += 1

        previous = signal.signal(signal.SIGINT, count)
        self._counting = True
        try:
            yield
        finally:
            self._counting = False
            signal.signal(signal.SIGINT, previous)

    def counting_sigint(self) -> contextlib.AbstractContextManager[None]:
        """Count Ctrl-C presses instead of raising KeyboardInterrupt (main thread only).

        The attached console holds this for its whole run, so that presses
        between statements (a burst that outlasts the statement) are dropped
        instead of landing anywhere in the front end.
        """
        return self._sigint_counter()

    @staticmethod
    def _print_late(message: Message) -> None:
        if message.get("t") == protocol.NOTICE:
            message = as_output(message)
        if message.get("t") == protocol.OUT:
            _write_default(message.get("name", "stdout"), message.get("text", ""))


class _Statement:
    """The client's side of one running statement: a handler per message kind."""

    def __init__(
        self,
        client: ConsoleClient,
        sid: str,
        rid: int,
        on_output: Callable[[str, str], None],
        on_result: Callable[[str], None] | None,
        on_input: Callable[[], str | None] | None,
    ) -> None:
        self.client = client
        self.sid = sid
        self.rid = rid
        self.on_output = on_output
        self.on_result = on_result
        self.on_input = on_input
        # running -> interrupted -> (asked where) -> stuck -> abandoning
        self.stage = "running"
        self.deadline: float | None = None
        self.results: list[str] = []
        self.outcome: Outcome | None = None
        self.handlers: dict[str, Callable[[Message], None]] = {
            protocol.OUT: self._out,
            protocol.RESULT: self._result,
            protocol.WHERE: self._where,
            protocol.INPUT: self._input,
            protocol.DONE: self._done,
            protocol.ERROR: self._error,
            protocol.ABANDONED: self._abandoned,
        }

    def pressed(self) -> None:
        """Ctrl-C while waiting; what it does depends on how far the stop got."""
        client = self.client
        if self.stage == "running":
            client._send(protocol.interrupt_request(self.sid, self.rid))
            self.stage = "interrupted"
            self.deadline = time.monotonic() + STOP_GRACE
        elif self.stage == "stuck":
            client._send(protocol.abandon_request(self.sid, self.rid))
            self.stage = "abandoning"
            self.deadline = time.monotonic() + ABANDON_TIMEOUT
        # Otherwise the statement is being stopped (or left): more presses,
        # such as a burst of them, change nothing.

    def overdue(self) -> None:
        """The deadline of the current stage passed."""
        self.deadline = None
        if self.stage == "interrupted":
            # Still running: a blocking C call ignores interrupts until it
            # returns. Show where it is stuck.
            self.client._send(protocol.where_request(self.sid, self.rid))
            self.stage = "asked where"
        elif self.stage == "abandoning":
            raise KeyboardInterrupt  # the node does not answer: stop waiting here

    def _out(self, message: Message) -> None:
        self.on_output(message.get("name", "stdout"), message.get("text", ""))

    def _result(self, message: Message) -> None:
        self.results.append(message["repr"])
        if self.on_result is not None:
            self.on_result(message["repr"])

    def _where(self, message: Message) -> None:
        text = message.get("stack")
        if self.stage != "asked where":
            return
        if not text:
            # Between statements: it ended meanwhile, and its outcome is on
            # its way. Should none come, ask again.
            self.stage = "interrupted"
            self.deadline = time.monotonic() + STOP_GRACE
            return
        self.stage = "stuck"
        # Only a press made after this report leaves the statement behind.
        self.client._sigints_handled = self.client._sigints
        self.on_output(
            "stderr",
            f"\n[the statement did not stop within {STOP_GRACE:g} s on {self.client.node}; "
            f"it is in:\n{text}"
            "Ctrl-C again leaves it running there and gives you the prompt back]\n",
        )

    def _abandoned(self, message: Message) -> None:
        self.outcome = Outcome("abandoned", results=self.results)
        self.outcome.thread = str(message.get("thread", ""))

    def _input(self, message: Message) -> None:
        client = self.client
        try:
            client._reading_input = True
            if client._sigints > client._sigints_handled:
                # Ctrl-C pressed as the question arrived.
                client._sigints_handled = client._sigints
                raise KeyboardInterrupt
            text = self.on_input() if self.on_input is not None else None
            client._send(protocol.input_reply(self.sid, self.rid, text))
        except KeyboardInterrupt:
            # Ctrl-C at the input prompt interrupts the statement.
            client._send(protocol.interrupt_request(self.sid, self.rid))
        finally:
            client._reading_input = False

    def _done(self, message: Message) -> None:
        outcome = Outcome(message["status"], results=self.results)
        outcome.exc_type = message.get("exc_type", "")
        outcome.traceback = message.get("traceback", "")
        outcome.duration = message.get("duration", 0.0)
        outcome.exit_code = int(message.get("exit_code") or 0)
        if outcome.status == "exit":
            self.client._closed = "the session ended (exit)"
        self.outcome = outcome

    def _error(self, message: Message) -> None:
        raise self.client._error(message)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid()) if hasattr(os, "getuid") else "?"
