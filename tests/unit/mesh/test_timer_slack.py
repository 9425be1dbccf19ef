"""libzmq's threads of a node run their timers with a slack, so that pings share wake-ups.

The transport gives its own thread the slack only while the context's first
socket starts libzmq's threads (a new thread inherits its creator's slack),
then gives it back.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from hotmesh._mesh.cookie import curve_keypair
from hotmesh._mesh.iothread import IOThread
from hotmesh._mesh.transport import Transport, peer_identity
from hotmesh._tick import Tick


def slack_ns(tid: int) -> int:
    return int(Path(f"/proc/{tid}/timerslack_ns").read_text())


def threads() -> dict[int, str]:
    out = {}
    for tid in os.listdir("/proc/self/task"):
        out[int(tid)] = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
    return out


def test_libzmq_threads_get_the_slack_and_the_node_s_thread_keeps_its_own() -> None:
    if not Path(f"/proc/{threading.get_native_id()}/timerslack_ns").exists():
        pytest.skip("the timer slack is a Linux feature")
    tick = Tick(2.0)
    before = set(threads())
    io = IOThread()
    io.start()
    transport = Transport(
        io,
        identity=peer_identity("slack@h", "1"),
        listen="tcp://127.0.0.1:*",
        keys=curve_keypair("timer-slack-test-cookie"),
        max_message_size=1 << 20,
        tick=tick,
    )
    try:
        own = io.run_sync(lambda: slack_ns(threading.get_native_id()))
        transport.open()
        new = {tid: name for tid, name in threads().items() if tid not in before}
        libzmq = [tid for tid, name in new.items() if name.startswith("ZMQbg/IO")]
        assert libzmq, new
        assert all(slack_ns(tid) == tick.zmtp_slack_ms * 1_000_000 for tid in libzmq)
        assert io.run_sync(lambda: slack_ns(threading.get_native_id())) == own
    finally:
        io.run_sync(transport.close)
        io.stop()
        transport.terminate()
