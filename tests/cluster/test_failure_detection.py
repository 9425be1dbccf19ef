"""Failure detection: a dead process is down at once, a stalled one is not down at all."""

from __future__ import annotations

import ctypes
import time

import pytest

import hotmesh
from hotmesh.testing import LocalCluster
from tests.waiting import wait_until

pytestmark = pytest.mark.cluster
HERE = "tests.cluster.test_failure_detection"


def hold_gil(seconds: float) -> float:
    """Sleep in C *holding* the GIL (PyDLL does not release it), like a long regex."""
    start = time.monotonic()
    ctypes.PyDLL(None).usleep(int(seconds * 1_000_000))
    return time.monotonic() - start


class Events:
    def __init__(self, node: hotmesh.Node) -> None:
        self.seen: list[tuple[str, str]] = []
        node.monitor_nodes(lambda event, name: self.seen.append((event, name)))


def test_a_killed_process_is_down_long_before_the_tick() -> None:
    # A 60 s tick: only the closed connection can explain a quick nodedown.
    with LocalCluster(3, tick=60.0) as cluster:
        cluster.wait_full_mesh(timeout=15)
        client = cluster.client()
        events = Events(client)
        victim = cluster.node(1)
        victim.kill()
        wait_until(lambda: ("nodedown", victim.name) in events.seen, timeout=5, message="down")
        assert "connection closed" in cluster.node(0).stderr_tail() or wait_until(
            lambda: f"nodedown {victim.name} (connection closed)" in cluster.node(0).stderr_tail(),
            timeout=5,
        )
        with pytest.raises(hotmesh.NodeDown):
            client.call(victim.name, "os.getpid")


def test_a_node_stalled_in_c_holding_the_gil_is_not_reported_down() -> None:
    with LocalCluster(3, tick=1.0) as cluster:
        cluster.wait_full_mesh(timeout=15)
        client = cluster.client()
        events = Events(client)
        stalled = cluster.node(1)
        client.cast(stalled.name, f"{HERE}.hold_gil", 3.0)  # three ticks
        # Calls to it time out as usual (once the cast runs)...
        wait_until(lambda: not _answers(client, stalled.name), timeout=5, message="stalled")
        # ...and once the stall is over, it answers: it never left the mesh.
        assert wait_until(
            lambda: _answers(client, stalled.name), timeout=10, message="answers again"
        )
        assert ("nodedown", stalled.name) not in events.seen
        for i in (0, 2):
            assert f"nodedown {stalled.name}" not in cluster.node(i).stderr_tail(400)
        cluster.wait_full_mesh(timeout=5)


def _answers(client: hotmesh.Node, name: str) -> bool:
    try:
        client.call(name, "os.getpid", timeout=0.5)
    except hotmesh.CallTimeout:
        return False
    return True
