"""Two network namespaces joined by a veth pair, for partition tests (needs root).

Side ``a`` and side ``b`` each get an address on the a-b link; this process
(in its own namespace) reaches both through a veth pair of its own per side
and a host route, so tests can call nodes on either side while the a-b link
is cut (link down: senders get "network unreachable") or blackholed (packets
silently dropped both ways: nobody gets an error, a reset or an ICMP; only
silence tells). Names are unique per run; ``close`` removes everything even
after a failure (deleting a namespace deletes its veth ends, their peers and
their queueing disciplines).
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import subprocess
from collections.abc import Iterator

import pytest

NEEDS_ROOT = pytest.mark.skipif(
    os.name != "posix" or os.geteuid() != 0 or shutil.which("ip") is None,
    reason="network namespace tests need root and iproute2 (ip netns); CI runs them as root",
)


NEEDS_TC = pytest.mark.skipif(
    shutil.which("tc") is None,
    reason="blackhole partitions need tc (iproute2) for the blackhole queueing discipline",
)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def _tc(*args: str) -> None:
    subprocess.run(["tc", *args], check=True, capture_output=True, timeout=10)


class Partition:
    """Namespaces ``a`` and ``b`` with one link between them; ``cut()``/``heal()`` it.

    Attributes:
        a, b: namespace names.
        host_a, host_b: each side's address on the a-b link (nodes listen there).
    """

    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.a, self.b = f"hm{tag}a", f"hm{tag}b"
        self._link_a, self._link_b = f"hm{tag}ab", f"hm{tag}ba"
        net = f"10.{random.randint(64, 250)}"
        self.host_a, self.host_b = f"{net}.0.1", f"{net}.0.2"
        self._net = net
        self._tag = tag
        self._made: list[str] = []

    def wrapper(self, side: str) -> list[str]:
        """The command prefix that runs a process on ``side`` (``"a"`` or ``"b"``)."""
        return ["ip", "netns", "exec", self.a if side == "a" else self.b]

    def open(self) -> Partition:
        """Create the namespaces, the links and the routes."""
        net, tag = self._net, self._tag
        for ns in (self.a, self.b):
            _ip("netns", "add", ns)
            self._made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("link", "add", self._link_a, "type", "veth", "peer", "name", self._link_b)
        self._made.append(self._link_a)  # until it moves into its namespace
        _ip("link", "set", self._link_a, "netns", self.a)
        _ip("link", "set", self._link_b, "netns", self.b)
        _ip("-n", self.a, "addr", "add", f"{self.host_a}/30", "dev", self._link_a)
        _ip("-n", self.b, "addr", "add", f"{self.host_b}/30", "dev", self._link_b)
        _ip("-n", self.a, "link", "set", self._link_a, "up")
        _ip("-n", self.b, "link", "set", self._link_b, "up")
        for index, (ns, host) in enumerate(((self.a, self.host_a), (self.b, self.host_b)), 1):
            outside, inside = f"hm{tag}{index}o", f"hm{tag}{index}i"
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            self._made.append(outside)
            _ip("link", "set", inside, "netns", ns)
            _ip("addr", "add", f"{net}.{index}.1/30", "dev", outside)
            _ip("link", "set", outside, "up")
            _ip("-n", ns, "addr", "add", f"{net}.{index}.2/30", "dev", inside)
            _ip("-n", ns, "link", "set", inside, "up")
            _ip("route", "add", f"{host}/32", "via", f"{net}.{index}.2")
        return self

    def cut(self) -> None:
        """Take the a-b link down (no packet crosses; nothing is reset)."""
        _ip("-n", self.a, "link", "set", self._link_a, "down")

    def heal(self) -> None:
        """Bring the a-b link back."""
        _ip("-n", self.a, "link", "set", self._link_a, "up")

    def blackhole(self) -> None:
        """Drop every packet on the a-b link, both ways, silently.

        A blackhole queueing discipline on each end: links and routes stay
        up, and senders are told nothing (a blackhole *route* would not do:
        local senders get EINVAL from it at once, a rejection, not silence).
        """
        _tc("-n", self.a, "qdisc", "add", "dev", self._link_a, "root", "blackhole")
        _tc("-n", self.b, "qdisc", "add", "dev", self._link_b, "root", "blackhole")

    def unblackhole(self) -> None:
        """Let packets through the a-b link again."""
        _tc("-n", self.a, "qdisc", "del", "dev", self._link_a, "root")
        _tc("-n", self.b, "qdisc", "del", "dev", self._link_b, "root")

    def close(self) -> None:
        """Delete the namespaces and this side's veth ends (no error if gone)."""
        for name in reversed(self._made):
            if name in (self.a, self.b):
                subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
            else:
                subprocess.run(["ip", "link", "del", name], capture_output=True, timeout=10)
        self._made.clear()


@contextlib.contextmanager
def partition() -> Iterator[Partition]:
    """A ``Partition``, removed on exit whatever happened."""
    part = Partition()
    try:
        yield part.open()
    finally:
        part.close()
