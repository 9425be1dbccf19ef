"""The catalogue of console protocol message kinds and a builder for each (no I/O).

Every ``console.*`` kind the client and the node exchange is declared here
once, with its direction and fields; the rest of ``hotmesh._console`` uses
these names and builders instead of string literals, and
docs/reference/console-protocol.md lists the same kinds (a test checks both).

Adding a kind (an airbag notice pushed to consoles, say): declare it with
``declare()`` here or in the module that sends it, document it, and, for a
node-to-client kind a client may receive between statements, pass
``late=True`` so that ``ConsoleClient`` hands it to ``on_unsolicited``.
"""

from __future__ import annotations

from typing import Any, Literal

from hotmesh._record import record

Message = dict[str, Any]
Direction = Literal["to node", "to client", "both"]

# Version of the console protocol, sent in ``console.opened``. Adding a kind or
# an optional field does not change it (receivers ignore what they don't know).
VERSION = 1


@record(frozen=True)
class Kind:
    """One message kind: its ``t``, direction, fields, and where it is handled.

    ``late`` marks node-to-client kinds that may arrive while no request waits
    for them (output of a statement nobody waits for, notices): the client
    shows them as they come.
    """

    name: str
    direction: Direction
    fields: tuple[str, ...]
    handled_by: str
    late: bool = False


KINDS: dict[str, Kind] = {}


def declare(
    name: str, direction: Direction, fields: str, handled_by: str, *, late: bool = False
) -> str:
    """Add kind ``name`` to the catalogue; returns ``name`` (the ``t`` value).

    ``fields`` is a space-separated list (optional ones in brackets), as the
    reference page shows them.

    Raises:
        ValueError: ``name`` is declared already or does not start with ``console.``.
    """
    if not name.startswith("console."):
        raise ValueError(f"console message kinds start with 'console.', not {name!r}")
    if name in KINDS:
        raise ValueError(f"console message kind {name!r} is declared already")
    KINDS[name] = Kind(name, direction, tuple(fields.split()), handled_by, late)
    return name


def node_kinds() -> tuple[str, ...]:
    """The kinds a node's console server handles: those sent to the node."""
    return tuple(k.name for k in KINDS.values() if k.direction != "to client")


def late_kinds() -> frozenset[str]:
    """The kinds a client shows as they come when no request waits for them."""
    return frozenset(k.name for k in KINDS.values() if k.late)


# -- client -> node (handled by hotmesh._console.server) -----------------------
_SERVER = "server.ConsoleServer"
OPEN = declare("console.open", "to node", "rid user host pid via [window] [width]", _SERVER)
EXEC = declare("console.exec", "to node", "sid rid code [name]", _SERVER)
INTERRUPT = declare("console.interrupt", "to node", "sid [rid]", _SERVER)
INPUT_REPLY = declare("console.input_reply", "to node", "sid rid text eof", _SERVER)
COMPLETE = declare("console.complete", "to node", "sid rid code pos", _SERVER)
PING = declare("console.ping", "to node", "sid", _SERVER)
CLOSE = declare("console.close", "to node", "sid rid", _SERVER)
ACK = declare("console.ack", "to node", "sid seq", _SERVER)
ABANDON = declare("console.abandon", "to node", "sid rid", _SERVER)
# Asked by the client, answered by the node with the same kind.
WHERE = declare("console.where", "both", "sid rid [stack]", "server / client.ConsoleClient")

# -- node -> client (handled by hotmesh._console.client) -----------------------
_CLIENT = "client.ConsoleClient"
OPENED = declare(
    "console.opened", "to client", "rid sid seq node pid python protocol [window]", _CLIENT
)
OUT = declare("console.out", "to client", "sid seq rid name text", _CLIENT, late=True)
RESULT = declare("console.result", "to client", "sid seq rid repr", _CLIENT, late=True)
INPUT = declare("console.input", "to client", "sid seq rid", _CLIENT)
DONE = declare(
    "console.done",
    "to client",
    "sid seq rid status duration [exc_type] [traceback] [exit_code]",
    _CLIENT,
    late=True,
)
COMPLETIONS = declare("console.completions", "to client", "sid rid status items", _CLIENT)
PONG = declare("console.pong", "to client", "sid busy", _CLIENT)
CLOSED = declare("console.closed", "to client", "sid rid", _CLIENT)
ERROR = declare("console.error", "to client", "sid rid error [gone]", _CLIENT)
# Pushed by the node to every attached session, between or during statements.
NOTICE = declare("console.notice", "to client", "sid text", _CLIENT, late=True)
ABANDONED = declare("console.abandoned", "to client", "sid seq rid thread", _CLIENT)


# -- builders: client -> node --------------------------------------------------


def open_request(
    rid: int,
    *,
    user: str,
    host: str,
    pid: int,
    via: str,
    window: int | None = None,
    width: int | None = None,
) -> Message:
    """Open a session; ``via`` is how the client runs (attach, eval, run).

    ``window``: the client acknowledges what it handled (``console.ack``), so
    the node may have up to that many messages unacknowledged; without it the
    node sends without flow control. ``width``: the columns results are laid
    out in (the client's terminal).
    """
    message: Message = {"t": OPEN, "rid": rid, "via": via, "pid": pid, "user": user}
    message["host"] = host
    if window is not None:
        message["window"] = window
    if width is not None:
        message["width"] = width
    return message


def exec_request(sid: str, rid: int, code: str, name: str = "") -> Message:
    """Run cell ``code`` as statement ``rid``; ``name`` shows in its tracebacks."""
    message: Message = {"t": EXEC, "sid": sid, "rid": rid, "code": code}
    if name:
        message["name"] = name
    return message


def interrupt_request(sid: str, rid: int | None = None) -> Message:
    """Interrupt the running statement (``rid`` only, when given)."""
    message: Message = {"t": INTERRUPT, "sid": sid}
    if rid is not None:
        message["rid"] = rid
    return message


def input_reply(sid: str, rid: int, text: str | None) -> Message:
    """Answer statement ``rid``'s ``input()``; None is end of file."""
    return {"t": INPUT_REPLY, "sid": sid, "rid": rid, "text": text or "", "eof": text is None}


def complete_request(sid: str, rid: int, code: str, pos: int) -> Message:
    """Ask for completions at offset ``pos`` of ``code``."""
    return {"t": COMPLETE, "sid": sid, "rid": rid, "code": code, "pos": pos}


def where_request(sid: str, rid: int) -> Message:
    """Ask where the running statement is."""
    return {"t": WHERE, "sid": sid, "rid": rid}


def ping(sid: str) -> Message:
    """Renew the session's lease."""
    return {"t": PING, "sid": sid}


def ack(sid: str, seq: int) -> Message:
    """Every message up to ``seq`` has been handled (flow control)."""
    return {"t": ACK, "sid": sid, "seq": seq}


def abandon_request(sid: str, rid: int) -> Message:
    """Leave statement ``rid``, which will not stop, running; go on in a fresh thread."""
    return {"t": ABANDON, "sid": sid, "rid": rid}


def close_request(sid: str, rid: int) -> Message:
    """End the session (detach)."""
    return {"t": CLOSE, "sid": sid, "rid": rid}


# -- builders: node -> client (the outbox adds sid and seq) ---------------------


def opened(rid: int, *, node: str, pid: int, python: str, window: int | None = None) -> Message:
    """The session is ready; ``window`` when the node applies flow control."""
    message: Message = {"t": OPENED, "rid": rid, "node": node, "pid": pid, "python": python}
    message["protocol"] = VERSION
    if window is not None:
        message["window"] = window
    return message


def out(rid: int, name: str, text: str) -> Message:
    """Output ``text`` of stream ``name`` (stdout/stderr) of statement ``rid``."""
    return {"t": OUT, "rid": rid, "name": name, "text": text}


def result(rid: int, shown: str) -> Message:
    """The repr of a top-level expression's value."""
    return {"t": RESULT, "rid": rid, "repr": shown}


def input_request(rid: int) -> Message:
    """Statement ``rid`` waits in ``input()``."""
    return {"t": INPUT, "rid": rid}


def done(
    rid: int,
    status: str,
    duration: float,
    exc_type: str = "",
    tb: str = "",
    exit_code: int | None = None,
) -> Message:
    """Statement ``rid`` ended with ``status`` (ok, error, interrupted, exit);
    ``exit_code`` is the status an ``exit`` asks for."""
    message: Message = {"t": DONE, "rid": rid, "status": status, "duration": round(duration, 6)}
    if exc_type:
        message["exc_type"] = exc_type
        message["traceback"] = tb
    if exit_code is not None:
        message["exit_code"] = exit_code
    return message


def abandoned(rid: int, thread: str) -> Message:
    """Statement ``rid`` was left running on ``thread``; the session goes on."""
    return {"t": ABANDONED, "rid": rid, "thread": thread}


def completions(sid: str, rid: Any, items: list[tuple[str, int, str]], status: str) -> Message:
    """Completion items ``[name, start, kind]`` with the status of the request."""
    return {
        "t": COMPLETIONS,
        "sid": sid,
        "rid": rid,
        "status": status,
        "items": [list(item) for item in items],
    }


def where_reply(stack: str) -> Message:
    """Where the running statement is (``_reply`` adds sid and rid)."""
    return {"t": WHERE, "stack": stack}


def pong(sid: str, busy: bool) -> Message:
    """Answer to a ping."""
    return {"t": PONG, "sid": sid, "busy": busy}


def closed() -> Message:
    """Answer to a close (``_reply`` adds sid and rid)."""
    return {"t": CLOSED}


def error(text: str, *, gone: bool = False) -> Message:
    """A refused request; ``gone`` when the session no longer exists."""
    message: Message = {"t": ERROR, "error": text}
    if gone:
        message["gone"] = True
    return message


def notice(sid: str, text: str) -> Message:
    """A one-line notice for the engineer (an airbag window opened, confirmed, reverted)."""
    return {"t": NOTICE, "sid": sid, "text": text}
