"""A node that does not ping a peer judges it by what the peer's link brings (real sockets).

Of each pair of nodes only one pings; the other reads, from the kernel, when
the pinger's link to its inbox last brought anything. These tests run two
transports in this process: a link that pings is never quiet, a link that
brought a message and then nothing is quiet within the limit (a message does
not hide silence, unlike libzmq's TTL), and a link is unconnected until its
first frame shows its connection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from hotmesh._membership.driver import pinger
from hotmesh._mesh.cookie import curve_keypair
from hotmesh._mesh.iothread import IOThread
from hotmesh._mesh.transport import Transport, peer_identity
from hotmesh._tick import Tick
from hotmesh._wire.frames import encode_frame
from tests.waiting import wait_until

TICK = Tick(0.4)  # pings every 280 ms; quiet after 500 ms


class Side:
    def __init__(self, name: str) -> None:
        self.io = IOThread()
        self.io.start()
        self.transport = Transport(
            self.io,
            identity=peer_identity(name, "1"),
            listen="tcp://127.0.0.1:*",
            keys=curve_keypair("quiet-watch-test-cookie"),
            max_message_size=1 << 20,
            tick=TICK,
        )
        self.endpoint = self.transport.open()
        self.received: list[bytes] = []

    def read(self) -> int:
        """Read the inbox as its reader thread would; how many messages came."""
        messages = self.transport.receive()
        self.received += [sender for sender, _ in messages]
        return len(messages)

    def close(self) -> None:
        self.io.run_sync(self.transport.close)
        self.io.stop()
        self.transport.terminate()


@pytest.fixture
def pair() -> Iterator[tuple[Side, Side]]:
    a, b = Side("a@h"), Side("b@h")
    try:
        if not b.transport.can_watch_quiet:
            pytest.skip("the kernel's receive time of a TCP connection is read on Linux only")
        yield a, b
    finally:
        a.close()
        b.close()


def watch(b: Side, name: str) -> threading.Event:
    quiet = threading.Event()
    b.io.run_sync(lambda: b.transport.watch_quiet(name, peer_identity(name, "1"), quiet.set))
    return quiet


@pytest.mark.parametrize("pings", [True, False])
def test_a_link_that_brought_a_message_is_quiet_only_if_it_does_not_ping(
    pair: tuple[Side, Side], pings: bool
) -> None:
    a, b = pair
    quiet = watch(b, "a@h")
    assert b.io.run_sync(lambda: b.transport.unconnected(0.0)) == ["a@h"]
    a.io.run_sync(lambda: a.transport.link("b@h", b.endpoint, pings=pings))
    a.transport.send("b@h", encode_frame({"t": "hb"}))
    wait_until(b.read, timeout=5, message="the frame that shows the connection")
    sent = time.monotonic()
    assert b.io.run_sync(b.transport.all_connected)
    if pings:
        # Three limits long, it pings: never quiet.
        assert not quiet.wait(3 * TICK.quiet_limit_ms / 1000)
    else:
        # The message came, then nothing: quiet once the limit has passed.
        assert quiet.wait(5.0)
        assert time.monotonic() - sent >= TICK.quiet_limit_ms / 1000 - 0.05
        assert b.io.run_sync(lambda: b.transport.unconnected(0.0)) == ["a@h"]


def test_a_closed_link_is_unconnected_not_quiet(pair: tuple[Side, Side]) -> None:
    a, b = pair
    quiet = watch(b, "a@h")
    a.io.run_sync(lambda: a.transport.link("b@h", b.endpoint, pings=True))
    a.transport.send("b@h", encode_frame({"t": "hb"}))
    wait_until(b.read, timeout=5, message="the frame that shows the connection")
    a.io.run_sync(lambda: a.transport.unlink("b@h"))
    # Looked at when it could first be quiet: closed, it is unconnected instead.
    wait_until(
        lambda: b.io.run_sync(lambda: b.transport.unconnected(0.0)) == ["a@h"],
        timeout=5,
        message="unconnected",
    )
    assert not quiet.is_set()


def test_unwatched_links_and_other_senders_are_not_watched(pair: tuple[Side, Side]) -> None:
    a, b = pair
    quiet = watch(b, "a@h")
    b.io.run_sync(lambda: b.transport.unwatch_quiet("a@h"))
    a.io.run_sync(lambda: a.transport.link("b@h", b.endpoint, pings=False))
    a.transport.send("b@h", encode_frame({"t": "hb"}))
    wait_until(b.read, timeout=5, message="a frame")
    assert not quiet.wait(2 * TICK.quiet_limit_ms / 1000)
    assert b.io.run_sync(b.transport.all_connected)


def test_each_pair_has_one_pinger_and_each_node_pings_about_half_its_peers() -> None:
    names = [f"node{i}@host" for i in range(64)]
    for a in names:
        for b in names:
            if a != b:
                assert pinger(a, b) == pinger(b, a) in (a, b)
    pings = [sum(pinger(a, b) == a for b in names if b != a) for a in names]
    assert sum(pings) == 64 * 63 // 2
    assert min(pings) >= 16 and max(pings) <= 47
