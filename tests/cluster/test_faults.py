"""One mesh through a run of faults, as they come on a real fleet: after each, full again.

Real ``hotmesh node`` processes on loopback, started at the same moment in a
ring of seeds, then killed and restarted at once (same port, new port, no
seeds), several at a time, stopped long enough to be declared down, and
stopped with SIGTERM. Every fault starts from a full mesh and must end in one,
without any test-side help: nobody is told who came back.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator

import pytest

from hotmesh.testing import LocalCluster
from tests.waiting import wait_until

pytestmark = pytest.mark.cluster

TICK = 1.0
SIZE = 7


@contextlib.contextmanager
def ring_started_at_once() -> Iterator[LocalCluster]:
    cluster = LocalCluster(SIZE, tick=TICK)
    try:
        cluster.start_all(lambda i, endpoints: [endpoints[(i + 1) % len(endpoints)]])
        cluster.wait_full_mesh(timeout=30)
        yield cluster
    except BaseException:
        for i in range(SIZE):  # a node left stopped would not see its SIGTERM
            with contextlib.suppress(ProcessLookupError):
                if cluster.node(i).pid:
                    os.kill(cluster.node(i).pid, signal.SIGCONT)
        cluster.close(failed=True)
        raise
    cluster.close()


def _kill_and_restart_at_once(cluster: LocalCluster) -> None:
    node = cluster.node(2)
    node.kill()
    node.restart(seeds=[cluster.node(3).endpoint])


def _kill_and_restart_on_a_new_port(cluster: LocalCluster) -> None:
    node = cluster.node(5)
    node.kill()
    node.restart(same_port=False, seeds=[cluster.node(6).endpoint])


def _kill_three_and_restart_them_together(cluster: LocalCluster) -> None:
    picked = [cluster.node(i) for i in (0, 3, 4)]
    endpoints = [node.endpoint for node in picked]
    for node in picked:
        node.kill()
    for index, node in enumerate(picked):  # each seeded by another one coming back
        node.restart(seeds=[endpoints[(index + 1) % len(picked)]], wait=False)
    for node in picked:
        node.wait_ready(cluster.start_timeout)


def _stop_past_the_tick(cluster: LocalCluster) -> None:
    node = cluster.node(1)
    os.kill(node.pid, signal.SIGSTOP)
    try:
        wait_until(
            lambda: all(
                node.name not in cluster.node(i).call("hotmesh._node.connected_nodes")
                for i in range(SIZE)
                if i != 1
            ),
            timeout=10 * TICK,
            message=f"{node.name} reported down by every other node",
        )
    finally:
        os.kill(node.pid, signal.SIGCONT)


def _terminate_and_restart_without_seeds(cluster: LocalCluster) -> None:
    node = cluster.node(6)
    node.stop()
    node.restart(seeds=[])  # same port: the others find it again


FAULTS: list[Callable[[LocalCluster], None]] = [
    _kill_and_restart_at_once,
    _stop_past_the_tick,
    _kill_and_restart_on_a_new_port,
    _kill_three_and_restart_them_together,
    _terminate_and_restart_without_seeds,
    _kill_and_restart_at_once,
]


def test_the_mesh_is_full_again_after_each_fault_in_a_row() -> None:
    with ring_started_at_once() as cluster:
        for fault in FAULTS:
            fault(cluster)
            try:
                cluster.wait_full_mesh(timeout=20)
            except TimeoutError as exc:
                raise AssertionError(f"after {fault.__name__}: {exc}") from None
