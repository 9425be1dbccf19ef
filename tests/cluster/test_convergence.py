"""The mesh always converges: nodes started at once in any seed topology, restarts.

Real ``hotmesh node`` processes on loopback, started at the same moment on
ports chosen up front, so that a node may be dialled before its own seed is up.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import pytest

from hotmesh.testing import LocalCluster
from tests.waiting import wait_until

pytestmark = pytest.mark.cluster

Seeds = Callable[[int, Sequence[str]], list[str]]


@contextlib.contextmanager
def started_at_once(size: int, seeds: Seeds, *, tick: float) -> Iterator[LocalCluster]:
    """A LocalCluster whose nodes all start at the same moment with ``seeds``."""
    cluster = LocalCluster(size, tick=tick)
    try:
        cluster.start_all(seeds)
        yield cluster
    except BaseException:
        cluster.close(failed=True)
        raise
    cluster.close()


def chain(i: int, endpoints: Sequence[str]) -> list[str]:
    """Each node's seed is the previous node (the first has none)."""
    return list(endpoints[i - 1 : i]) if i else []


def reverse_chain(i: int, endpoints: Sequence[str]) -> list[str]:
    """Each node's seed is the next node (the last has none)."""
    return list(endpoints[i + 1 : i + 2])


def ring(i: int, endpoints: Sequence[str]) -> list[str]:
    """Each node's seed is the next node, the last's is the first."""
    return [endpoints[(i + 1) % len(endpoints)]]


def star(i: int, endpoints: Sequence[str]) -> list[str]:
    """Every node's seed is node 0, which has none."""
    return [endpoints[0]] if i else []


@pytest.mark.parametrize(
    ("topology", "size"),
    [(chain, 8), (reverse_chain, 6), (ring, 6), (star, 12)],
    ids=["chain-8", "reverse-chain-6", "ring-6", "star-12"],
)
def test_nodes_started_at_once_form_a_full_mesh(topology: Seeds, size: int) -> None:
    with started_at_once(size, topology, tick=2.0) as cluster:
        cluster.wait_full_mesh(timeout=30)


def test_seed_without_seeds_rejoins_after_kill_9_and_restart() -> None:
    with started_at_once(5, star, tick=1.0) as cluster:
        cluster.wait_full_mesh(timeout=20)
        seed = cluster.node(0)
        seed.kill()
        # Once every other node has seen it go down (no heartbeat of theirs can
        # reach the new run), restart it on the same port with no seeds: the
        # others must find it.
        wait_until(
            lambda: (
                not any(
                    seed.name in cluster.node(i).call("hotmesh._node.connected_nodes")
                    for i in range(1, cluster.size)
                )
            ),
            timeout=10,
            message="the seed is down everywhere",
        )
        seed.restart(seeds=[])
        cluster.wait_full_mesh(timeout=15)


def test_every_node_killed_and_restarted_at_once_forms_the_mesh_again() -> None:
    with started_at_once(6, chain, tick=1.0) as cluster:
        cluster.wait_full_mesh(timeout=20)
        first_pids = [cluster.node(i).pid for i in range(cluster.size)]
        for i in range(cluster.size):
            cluster.node(i).kill()
        for i in range(cluster.size):
            node = cluster.node(i)
            node.restart(seeds=node.seeds, wait=False)
        for i in range(cluster.size):
            cluster.node(i).wait_ready(cluster.start_timeout)
        cluster.wait_full_mesh(timeout=20)
        assert not {cluster.node(i).pid for i in range(cluster.size)} & set(first_pids)
