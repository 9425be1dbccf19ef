"""Callbacks of the demo's ``demo`` service, release v2: counters become records.

Requests are unchanged (``<id> INCR <key>``, ``<id> GET <key>``, ``<id> PING``);
replies become ``<id> v2 ok count=<n> conn=<connection id>``. State:
``{"counters": {key: {"count": n, "last_conn": conn}}, "conns": {conn: {"requests": n}}}``.
``code_change`` turns v1 state into v2 state, and back on a revert (``("down", vsn)``).
New in v2: at most ``demo.max_counters`` keys (a hotmesh setting, default 1000);
the v2 deploy example raises it with an upgrade action.
"""

from typing import Any

from hotmesh import settings

DEFAULT_MAX_COUNTERS = 1000

__vsn__ = "v2"


def init() -> dict[str, Any]:
    return {"counters": {}, "conns": {}}


def handle_call(msg: tuple[int, str], state: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    conn, line = msg
    rid, _, rest = line.partition(" ")
    words = rest.split()
    record = state["conns"].setdefault(conn, {"requests": 0})
    record["requests"] += 1
    if words[:1] == ["INCR"] and len(words) == 2:
        counters = state["counters"]
        limit = settings.get("demo.max_counters", DEFAULT_MAX_COUNTERS)
        if words[1] not in counters and len(counters) >= limit:
            return f"{rid} v2 error too many counters (demo.max_counters={limit})", state
        counter = counters.setdefault(words[1], {"count": 0, "last_conn": None})
        counter["count"] += 1
        counter["last_conn"] = conn
        return f"{rid} v2 ok count={counter['count']} conn={conn}", state
    if words[:1] == ["GET"] and len(words) == 2:
        counter = state["counters"].get(words[1], {"count": 0})
        return f"{rid} v2 ok count={counter['count']} conn={conn}", state
    if words == ["PING"]:
        return f"{rid} v2 ok pong conn={conn}", state
    return f"{rid} v2 error unknown request {rest!r}", state


def handle_cast(msg: tuple[str, int], state: dict[str, Any]) -> dict[str, Any]:
    kind, conn = msg
    if kind == "open":
        state["conns"][conn] = {"requests": 0}
    elif kind == "close":
        state["conns"].pop(conn, None)
    return state


def code_change(old_vsn: Any, state: dict[str, Any]) -> dict[str, Any]:
    if isinstance(old_vsn, tuple) and old_vsn[0] == "down":
        return {
            "counters": {key: c["count"] for key, c in state["counters"].items()},
            "conns": {conn: c["requests"] for conn, c in state["conns"].items()},
        }
    return {
        "counters": {key: {"count": n, "last_conn": None} for key, n in state["counters"].items()},
        "conns": {conn: {"requests": n} for conn, n in state["conns"].items()},
    }
