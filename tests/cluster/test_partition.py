"""Partitions in network namespaces: the mesh heals by itself; a name conflict is settled once.

Nodes run on two sides (``ip netns``) joined by one veth link; the tests cut
and restore that link, or blackhole it (every packet silently dropped, both
ways) and let it through again. Needs root (skipped otherwise; CI runs as root).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

import hotmesh
from hotmesh.testing import LocalCluster
from hotmesh.testing.cluster import NodeProcess
from tests.cluster.netns import NEEDS_ROOT, NEEDS_TC, Partition, partition
from tests.waiting import wait_until

pytestmark = [pytest.mark.cluster, NEEDS_ROOT]
TICK = 1.0


def peers_of(node: NodeProcess) -> set[str]:
    try:
        return set(node.call("hotmesh._node.connected_nodes", timeout=1.0))
    except hotmesh.HotmeshError:
        return set()


def meshed(nodes: Sequence[NodeProcess]) -> bool:
    """Whether every node lists exactly the others."""
    names = {n.name for n in nodes}
    return all(peers_of(n) == names - {n.name} for n in nodes)


@contextlib.contextmanager
def side(
    part: Partition,
    which: str,
    size: int,
    prefix: str,
    *,
    cookie: str,
    seeds: Sequence[str] = (),
    state: Path | None = None,
    port: int = 7100,
) -> Iterator[LocalCluster]:
    """``size`` nodes on one side, listening on that side's link address."""
    host = part.host_a if which == "a" else part.host_b
    env = {"HOTMESH_STATE_DIR": str(state)} if state else None
    cluster = LocalCluster(
        size, prefix=prefix, tick=TICK, env=env, wrapper=lambda i: part.wrapper(which)
    )
    cluster.cookie = cookie
    listen = [f"tcp://{host}:{port + i}" for i in range(size)]
    try:
        cluster.start_all(lambda i, eps: [*eps[:i], *seeds], listen=listen)
        yield cluster
    except BaseException:
        cluster.close(failed=True)
        raise
    cluster.close()


def nodes_of(*clusters: LocalCluster) -> list[NodeProcess]:
    return [c.node(i) for c in clusters for i in range(c.size)]


@pytest.mark.parametrize(
    ("split", "mend"),
    [
        # Link down: no packet crosses, nothing is reset.
        pytest.param(Partition.cut, Partition.heal, id="cut"),
        # Every packet silently dropped both ways: no reset, no error, only
        # libzmq's unanswered pings tell.
        pytest.param(Partition.blackhole, Partition.unblackhole, id="blackhole", marks=NEEDS_TC),
    ],
)
def test_split_mesh_is_seen_down_on_both_sides_and_heals_by_itself(
    split: Callable[[Partition], None], mend: Callable[[Partition], None]
) -> None:
    cookie = "partition-" + os.urandom(8).hex()
    with (
        partition() as part,
        side(part, "a", 3, "a", cookie=cookie) as left,
        side(part, "b", 3, "b", cookie=cookie, seeds=left.endpoints) as right,
    ):
        everyone = nodes_of(left, right)
        wait_until(lambda: meshed(everyone), timeout=20, message="one mesh of 6")

        split(part)
        wait_until(
            lambda: meshed(nodes_of(left)) and meshed(nodes_of(right)),
            timeout=10 * TICK,
            message="two islands of 3",
        )
        for node in everyone:  # nodedown on both sides
            assert "nodedown" in node.stderr_tail(400), node.name

        mend(part)
        # Nobody was restarted: redials made while cut off were never answered;
        # fresh ones (and the seeds) bring nodeup on both sides.
        wait_until(lambda: meshed(everyone), timeout=10 * TICK, message="healed")


def test_same_name_on_both_sides_is_settled_for_the_older_run_and_logged_once(
    tmp_path: Path,
) -> None:
    cookie = "partition-" + os.urandom(8).hex()
    with partition() as part, side(part, "a", 3, "n", cookie=cookie) as left:
        part.cut()
        # Side b starts while cut off: its n1 (a newer run of side a's n1;
        # another host's registry) meets m1 and m2 there.
        with (
            side(
                part, "b", 1, "n", cookie=cookie, seeds=left.endpoints, state=tmp_path / "b"
            ) as dup,
            side(
                part,
                "b",
                2,
                "m",
                cookie=cookie,
                seeds=[*dup.endpoints, *left.endpoints],
                state=tmp_path / "b",
                port=7200,
            ) as right,
        ):
            older, newer = left.node(0), dup.node(0)
            assert older.name == newer.name
            wait_until(lambda: meshed([newer, *nodes_of(right)]), timeout=20, message="b side")

            part.heal()
            winners = [*nodes_of(left), *nodes_of(right)]
            wait_until(lambda: meshed(winners), timeout=10 * TICK, message="one mesh")
            # Every node means the older run by the name.
            for node in winners:
                if node is not older:
                    where = node.call("hotmesh._node.endpoint_of", older.name)
                    assert where == older.endpoint, node.name
            wait_until(lambda: not peers_of(newer), timeout=5 * TICK, message="loser out")
            # Some ticks later: still settled, and logged once.
            with pytest.raises(AssertionError):
                wait_until(lambda: not meshed(winners), timeout=4 * TICK)
            assert not peers_of(newer)
            assert newer.stderr_tail(400).count("leaves the mesh") == 1
            for node in winners:
                refusals = node.stderr_tail(400).count(f"refused {older.name}")
                assert refusals <= 1, (node.name, node.stderr_tail(400))
