"""Fixtures: a console server on a fake node, and clients attached to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hotmesh._console.client import ConsoleClient
from hotmesh._console.server import ConsoleServer
from hotmesh.testing.fakes import FakeNode


@pytest.fixture
def fake_node(tmp_path: Path) -> Iterator[FakeNode]:
    node = FakeNode("alpha@box", tmp_path / "alpha")
    try:
        yield node
    finally:
        node.close()


def _serve(server: ConsoleServer) -> Iterator[ConsoleServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server(fake_node: FakeNode) -> Iterator[ConsoleServer]:
    # The lease is far above the ping gaps of a loaded machine: clients ping
    # every 0.1 s, yet with jedi and the REPL busy in this process a gap of
    # 0.53 s was measured, and a 0.5 s lease then reaped a live session.
    yield from _serve(ConsoleServer(fake_node, lease=5.0, idle_timeout=0.3, tick=0.05))


@pytest.fixture
def short_lease_server(fake_node: FakeNode) -> Iterator[ConsoleServer]:
    """A server that detaches a client silent for 0.5 s, for tests of leases."""
    yield from _serve(ConsoleServer(fake_node, lease=0.5, idle_timeout=0.3, tick=0.05))


@pytest.fixture
def attach(fake_node: FakeNode, server: ConsoleServer) -> Iterator[Callable[[], ConsoleClient]]:
    clients: list[ConsoleClient] = []

    def attach() -> ConsoleClient:
        client = ConsoleClient(fake_node.connect(), ping_interval=0.1, silence_limit=5.0)
        clients.append(client)
        client.open()
        return client

    try:
        yield attach
    finally:
        for client in clients:
            client.close(timeout=0.5)
