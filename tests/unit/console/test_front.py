"""A node's console front: the hooks at start, the server at the first console message."""

from __future__ import annotations

import sys
import time

from hotmesh._console import protocol
from hotmesh._console.client import ConsoleClient
from hotmesh._console.front import ConsoleFront
from hotmesh._console.routing import RoutedStream
from hotmesh._console.server import ConsoleServer
from hotmesh.testing.fakes import FakeNode
from tests.consoles import run


def test_the_front_handles_every_kind_the_server_handles(fake_node: FakeNode) -> None:
    server = ConsoleServer(fake_node)
    assert set(protocol.node_kinds()) == set(server.handlers())


def test_the_hooks_go_in_at_start_and_the_server_comes_with_the_first_console(
    fake_node: FakeNode,
) -> None:
    original_sleep = time.sleep
    front = ConsoleFront(fake_node)
    front.start()
    try:
        assert isinstance(sys.stdout, RoutedStream) and time.sleep is not original_sleep
        assert front.server is None and set(fake_node.handlers) == set(protocol.node_kinds())
        client = ConsoleClient(fake_node.connect(), ping_interval=0.1, silence_limit=5.0)
        client.open()
        try:
            assert run(client, "6 * 7")[0].results == ["42"]
            assert front.server is not None and front.server.session_count() == 1
        finally:
            client.close(timeout=0.5)
    finally:
        front.stop()
    assert not isinstance(sys.stdout, RoutedStream) and time.sleep is original_sleep


def test_a_console_message_after_the_stop_is_told_the_console_stopped(
    fake_node: FakeNode,
) -> None:
    front = ConsoleFront(fake_node)
    front.start()
    front.stop()
    link = fake_node.connect()
    link.send(protocol.open_request(1, user="u", host="h", pid=1, via="attach"))
    answer = link.recv(timeout=5)
    assert answer is not None and answer["t"] == protocol.ERROR
    assert answer["error"] == "console stopped" and answer["rid"] == 1
