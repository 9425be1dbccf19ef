"""The demo TCP front end: lines answered in order; a crash costs one reply, not the connection."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Iterator

import pytest

from hotmesh.demo.frontend import FrontEnd
from hotmesh.service import service_status, start_service, stop_service
from tests.unit.service.conftest import Callbacks
from tests.waiting import wait_until

CALLBACKS = """
    def init():
        return {"count": 0, "open": set()}

    def handle_call(msg, state):
        conn, line = msg
        rid, _, rest = line.partition(" ")
        if rest == "boom":
            raise RuntimeError("boom on purpose")
        state["count"] += 1
        return f"{rid} v1 ok {state['count']}", state

    def handle_cast(msg, state):
        kind, conn = msg
        (state["open"].add if kind == "open" else state["open"].discard)(conn)
        return state
"""


@pytest.fixture
def frontend(managed: Callable[[str], Callbacks]) -> Iterator[FrontEnd]:
    mod = managed(CALLBACKS)
    name = f"fe-{uuid.uuid4().hex[:8]}"
    start_service(name, mod.name)
    server = FrontEnd(name)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        stop_service(name)


def _lines(sock: socket.socket, count: int) -> list[str]:
    data = b""
    while data.count(b"\n") < count:
        chunk = sock.recv(4096)
        assert chunk, "connection closed by the front end"
        data += chunk
    return data.decode().splitlines()


def test_pipelined_lines_are_answered_in_order(frontend: FrontEnd) -> None:
    with socket.create_connection(("127.0.0.1", frontend.port), timeout=5) as sock:
        sock.sendall(b"".join(f"{i} INCR k\n".encode() for i in range(1, 21)))
        assert _lines(sock, 20) == [f"{i} v1 ok {i}" for i in range(1, 21)]


def test_a_crash_answers_err_and_the_connection_keeps_serving(frontend: FrontEnd) -> None:
    with socket.create_connection(("127.0.0.1", frontend.port), timeout=5) as sock:
        sock.sendall(b"1 INCR k\n2 boom\n3 INCR k\n")
        first, crashed, after = _lines(sock, 3)
        assert first == "1 v1 ok 1"
        assert crashed.startswith("2 ERR ServiceCrashed: ")
        assert "boom on purpose" in crashed
        assert after == "3 v1 ok 1"  # restarted from init, same connection
    assert service_status(frontend.service).restarts == 1


def test_connections_are_counted_and_closed_ones_forgotten(frontend: FrontEnd) -> None:
    with socket.create_connection(("127.0.0.1", frontend.port), timeout=5) as sock:
        sock.sendall(b"1 INCR k\n")
        _lines(sock, 1)
        assert frontend.open_connections == 1
    wait_until(lambda: frontend.open_connections == 0, timeout=5, message="connection closed")
    assert frontend.opened == 1
