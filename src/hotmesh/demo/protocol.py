"""The demo's line protocol: requests the traffic generator sends, replies it checks (no I/O).

Request ``<id> INCR <key>``; replies ``<id> v1 ok <count>`` (release v1) or
``<id> v2 ok count=<count> conn=<conn>`` (release v2); ``<id> ERR <text>`` from the
front end when the service could not answer.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reply:
    """A parsed reply: request id, release format (``v1``/``v2``/``ERR``), count if any."""

    rid: int
    fmt: str
    count: int | None
    text: str


def incr(rid: int, key: str) -> str:
    """The request line that increments ``key`` (without the newline)."""
    return f"{rid} INCR {key}"


def parse_reply(line: str) -> Reply:
    """Parse one reply line.

    Raises:
        ValueError: the line is not a reply of the demo protocol.
    """
    parts = line.split()
    if len(parts) < 2 or not parts[0].isdigit():
        raise ValueError(f"not a demo reply: {line!r}")
    rid, fmt = int(parts[0]), parts[1]
    count: int | None = None
    if fmt == "v1" and len(parts) == 4 and parts[2] == "ok" and parts[3].isdigit():
        count = int(parts[3])
    elif fmt == "v2" and len(parts) >= 4 and parts[2] == "ok":
        fields = dict(p.split("=", 1) for p in parts[3:] if "=" in p)
        if fields.get("count", "").isdigit():
            count = int(fields["count"])
    elif fmt != "ERR":
        raise ValueError(f"not a demo reply: {line!r}")
    return Reply(rid, fmt, count, line)
