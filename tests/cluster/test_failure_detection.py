"""Failure detection: a dead process is down at once, a stalled one or one still heard is not."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import time
from typing import Any

import pytest

import hotmesh
from hotmesh._membership.driver import pinger
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


def cast_then_freeze() -> None:
    """Send every peer a message over this node's links, then stop this process."""
    node = hotmesh.current_node()
    for peer in node.nodes():
        node.cast(peer, "os.getpid")
    time.sleep(0.05)  # the casts leave libzmq's queue before the process stops
    os.kill(os.getpid(), signal.SIGSTOP)


def stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] == "T"


def both_roles(names: list[str]) -> str:
    """A node that pings some of the others and is pinged by the rest."""
    for name in names:
        roles = {pinger(name, other) == name for other in names if other != name}
        if roles == {True, False}:
            return name
    raise AssertionError(f"no node of {names} has both roles")


def test_a_killed_process_is_down_long_before_the_tick() -> None:
    # A 60 s tick: only the closed connection can explain a quick nodedown.
    with LocalCluster(4, tick=60.0) as cluster:
        cluster.wait_full_mesh(timeout=15)
        client = cluster.client()
        events = Events(client)
        victim = cluster.node(cluster.names.index(both_roles(cluster.names)))
        victim.kill()
        wait_until(lambda: ("nodedown", victim.name) in events.seen, timeout=5, message="down")
        # Every peer, whether it pinged the victim or the victim pinged it.
        for node in [cluster.node(i) for i in range(4)]:
            if node is not victim:
                wait_until(
                    lambda node=node: (
                        f"nodedown {victim.name} (connection closed)" in node.stderr_tail()
                    ),
                    timeout=5,
                    message=f"{node.name} saw it",
                )
        with pytest.raises(hotmesh.NodeDown):
            client.call(victim.name, "os.getpid")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_peer_stopped_right_after_it_sent_a_message_is_down_within_the_tick_for_all() -> None:
    # Of each pair one node pings: its pings tell it of the other's silence,
    # and the other sees the pinger's link bring nothing. A message last
    # (libzmq's TTL would miss that) must not hide the silence either way.
    tick = 1.0
    with LocalCluster(4, tick=tick) as cluster:
        cluster.wait_full_mesh(timeout=15)
        client = cluster.client()
        frozen = cluster.node(cluster.names.index(both_roles(cluster.names)))
        others = [cluster.node(i) for i in range(4) if cluster.node(i) is not frozen]
        try:
            client.cast(frozen.name, f"{HERE}.cast_then_freeze")
            wait_until(lambda: stopped(frozen.pid), timeout=10, message="stopped")
            for node in others:
                # Down within 1.25 tick (and slack for a busy machine), each by
                # its own means: its pings went unanswered, or the pings it
                # was sent stopped coming.
                pinged = pinger(node.name, frozen.name) == node.name
                why = "connection closed" if pinged else "silent"
                wait_until(
                    lambda node=node, why=why: (
                        f"nodedown {frozen.name} ({why})" in node.stderr_tail()
                    ),
                    timeout=1.25 * tick + 2.0,
                    message=f"{node.name} saw it ({why})",
                )
        finally:
            frozen._proc.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
        cluster.wait_full_mesh(timeout=15)


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
        # It pings as a peer does (whichever of the pair pings, the link from a
        # live peer to the judge is never quiet): only "never connected" is left.
        ghost.heartbeat_ivl = 200
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
