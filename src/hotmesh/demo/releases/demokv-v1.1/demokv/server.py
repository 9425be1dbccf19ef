"""Callbacks of the demo's ``demo`` service, release v1.1: v1 with its GET bug fixed.

Requests are lines ``<id> INCR <key>``, ``<id> GET <key>`` or ``<id> PING``; replies
are ``<id> v1 ok <count>``. State: ``{"counters": {key: int}, "conns": {conn: int}}``
where ``conns`` counts the requests of each open client connection.

Fixed: ``GET`` of a key never incremented answers 0 (v1 raised KeyError there,
crashing the service and losing every counter). Same state format: no code_change.
"""

from typing import Any

__vsn__ = "v1.1"


def init() -> dict[str, Any]:
    return {"counters": {}, "conns": {}}


def handle_call(msg: tuple[int, str], state: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    conn, line = msg
    rid, _, rest = line.partition(" ")
    words = rest.split()
    conns = state["conns"]
    conns[conn] = conns.get(conn, 0) + 1
    if words[:1] == ["INCR"] and len(words) == 2:
        counters = state["counters"]
        counters[words[1]] = counters.get(words[1], 0) + 1
        return f"{rid} v1 ok {counters[words[1]]}", state
    if words[:1] == ["GET"] and len(words) == 2:
        return f"{rid} v1 ok {state['counters'].get(words[1], 0)}", state
    if words == ["PING"]:
        return f"{rid} v1 ok pong", state
    return f"{rid} v1 error unknown request {rest!r}", state


def handle_cast(msg: tuple[str, int], state: dict[str, Any]) -> dict[str, Any]:
    kind, conn = msg
    if kind == "open":
        state["conns"][conn] = 0
    elif kind == "close":
        state["conns"].pop(conn, None)
    return state
