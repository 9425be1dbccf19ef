"""Failure detection: a dead process is down at once, a stalled one or one still heard is not."""

from __future__ import annotations

import ctypes
import logging
import time
from typing import Any

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


def test_a_peer_still_heard_is_not_down_though_our_link_to_it_never_connects(
    start_node: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # A peer whose own link reaches us, and whose inbox takes TCP connections but
    # never answers: our link to it never finishes its handshake (as under a CPU
    # too busy to do them in time). While its traffic reaches us it is up; once it
    # is silent too, it is down within two ticks ("never connected").
    import socket

    import zmq

    from hotmesh._mesh.cookie import curve_keypair
    from hotmesh._wire.frames import encode_frame

    caplog.set_level(logging.INFO, logger="hotmesh.mesh")
    cookie = "never-connected-test-cookie"
    judge = start_node("judge", cookie=cookie)  # tick 1 s: two ticks are 2 s
    events = Events(judge)
    public, secret = curve_keypair(cookie)
    ctx = zmq.Context()
    with socket.socket() as mute, ctx.socket(zmq.DEALER) as ghost:
        mute.bind(("127.0.0.1", 0))
        mute.listen(16)
        endpoint = f"tcp://127.0.0.1:{mute.getsockname()[1]}"
        ghost.linger = 0
        ghost.identity = b"@ghost@h/1-g"
        ghost.curve_serverkey = ghost.curve_publickey = public
        ghost.curve_secretkey = secret
        ghost.connect(judge.endpoint)
        hello = {"t": "hello", "node": "ghost@h", "inc": "1-g", "ep": endpoint, "members": []}
        ghost.send(encode_frame(hello))
        wait_until(lambda: "ghost@h" in judge.nodes(), timeout=10, message="ghost up")
        talk_until = time.monotonic() + 5.0  # 2.5 times the limit
        while time.monotonic() < talk_until:
            ghost.send(encode_frame({"t": "hb"}))
            time.sleep(0.3)  # pacing its traffic, not waiting on anything
        assert "ghost@h" in judge.nodes()
        assert ("nodedown", "ghost@h") not in events.seen
        silent_since = time.monotonic()
        wait_until(lambda: ("nodedown", "ghost@h") in events.seen, timeout=10, message="ghost down")
        assert time.monotonic() - silent_since >= 1.5
        assert "nodedown ghost@h (never connected)" in caplog.text
    ctx.term()
