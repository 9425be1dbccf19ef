"""Calls and pings from a process that is not a mesh member, over a ``Connection`` (socket I/O).

``call`` speaks the same call/reply messages as nodes (``hotmesh._rpc.messages``);
``resolve`` turns a node name into an endpoint through this host's registry
or what a local node knows.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections.abc import Callable
from typing import Any

from hotmesh._errors import CallTimeout, NoSuchNode
from hotmesh._mesh import registry
from hotmesh._mesh.client import Connection
from hotmesh._paths import full_node_name
from hotmesh._rpc import messages

_ids = itertools.count(1)


def call(conn: Connection, fn: str, *args: Any, timeout: float = 5.0, **kwargs: Any) -> Any:
    """Run ``fn(*args, **kwargs)`` on the node behind ``conn`` and return its value.

    Other messages that arrive meanwhile are kept in ``conn.backlog`` (``recv``
    returns them first).

    Raises:
        CallTimeout: no reply within ``timeout``.
        RemoteError, NoSuchFunction: as for ``Node.call``.
    """
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
