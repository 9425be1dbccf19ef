"""Connections that never finish the CURVE handshake cannot exhaust a node's descriptors."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Iterator

import pytest

from hotmesh.testing import LocalCluster
from tests.waiting import wait_until

pytestmark = pytest.mark.cluster
LIMIT = 400  # the node's file limit (soft = hard, so it cannot raise it)

# Runs the node with a file limit of LIMIT, then execs it.
WRAPPER = [
    sys.executable,
    "-c",
    "import os, resource, sys; "
    f"resource.setrlimit(resource.RLIMIT_NOFILE, ({LIMIT}, {LIMIT})); "
    "os.execv(sys.argv[1], sys.argv[1:])",
]


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@contextlib.contextmanager
def idle_connections(endpoint: str, count: int) -> Iterator[list[socket.socket]]:
    """``count`` plain TCP connections that never say a word (kept open)."""
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    conns: list[socket.socket] = []
    try:
        for _ in range(count):
            conns.append(socket.create_connection((host, int(port)), timeout=5))
        yield conns
    finally:
        for conn in conns:
            conn.close()


def test_a_flood_of_idle_connections_is_capped_and_peers_and_consoles_still_get_in() -> None:
    with LocalCluster(2, tick=1.0, wrapper=lambda i: WRAPPER if i == 0 else []) as cluster:
        cluster.wait_full_mesh(timeout=15)
        target = cluster.node(0)
        with idle_connections(target.endpoint, 2 * LIMIT):
            # The flood is cut down: libzmq may accept a burst before the monitor
            # sees it, so the count can touch the limit for a moment, then falls.
            wait_until(
                lambda: open_fds(target.pid) < LIMIT - 64,
                timeout=10,
                message="the flood's descriptors are given back",
            )
            wait_until(
                lambda: "wait for their CURVE handshake" in target.stderr_tail(),
                timeout=5,
                message="the refusals are logged",
            )
            # The peer it had is still there, and a new console gets in (at the
            # latest once the waiting handshakes time out).
            assert cluster.node(1).name in target.call("hotmesh._node.connected_nodes")
            client = cluster.client()
            assert client.call(target.name, "os.getpid", timeout=10) == target.pid
        lines = [line for line in target.stderr_tail(400).splitlines() if "refused" in line]
        assert 1 <= len(lines) <= 6, lines  # rate-limited (one line per 10 s), with counts
