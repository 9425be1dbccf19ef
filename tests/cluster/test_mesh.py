"""Forming and keeping the mesh with real node processes: join, nodedown, rejoin, names."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

import hotmesh
from hotmesh.testing import LocalCluster
from tests.waiting import wait_until

pytestmark = pytest.mark.cluster
RPC = "tests.cluster.test_rpc"


class Events:
    """Collects monitor_nodes events."""

    def __init__(self, node: hotmesh.Node) -> None:
        self.seen: list[tuple[str, str]] = []
        self.cancel = node.monitor_nodes(lambda event, name: self.seen.append((event, name)))

    def has(self, event: str, name: str) -> bool:
        return (event, name) in self.seen


def test_five_nodes_form_a_full_mesh_from_a_single_seed() -> None:
    with LocalCluster(5, tick=1.0) as cluster:
        cluster.wait_full_mesh(timeout=15)
        for i, name in enumerate(cluster.names):
            peers = cluster.node(i).call("hotmesh._node.connected_nodes")
            assert sorted(peers) == sorted(set(cluster.names) - {name})


def test_membership_spreads_transitively_along_a_chain_of_seeds(
    start_node: Callable[..., hotmesh.Node],
) -> None:
    nodes = [start_node("chain0")]
    for i in range(1, 4):
        nodes.append(start_node(f"chain{i}", seeds=[nodes[-1].endpoint]))
    for node in nodes:
        others = [n.name for n in nodes if n is not node]
        assert node.wait_connected(others, timeout=10), (node.name, node.nodes())


def test_killed_node_is_reported_down_and_rejoins_when_restarted() -> None:
    with LocalCluster(3, tick=1.0) as cluster:
        cluster.wait_full_mesh(timeout=15)
        client = cluster.client()
        events = Events(client)
        victim = cluster.names[1]
        cluster.node(1).kill()
        wait_until(lambda: events.has("nodedown", victim), timeout=3.0, message="nodedown")
        assert victim not in client.nodes()
        with pytest.raises(hotmesh.NodeDown):
            client.call(victim, "os.getpid", timeout=30.0)
        # The surviving nodes noticed too, each on its own heartbeat clock: the
        # client may see the silence a few milliseconds before node 0 does.
        wait_until(
            lambda: victim not in cluster.node(0).call("hotmesh._node.connected_nodes"),
            timeout=3.0,
            message="node 0 saw the nodedown",
        )

        cluster.node(1).restart()
        wait_until(lambda: events.seen[-1] == ("nodeup", victim), timeout=10, message="nodeup")
        assert client.call(victim, "os.getpid") == cluster.node(1).pid
        cluster.wait_full_mesh(timeout=10)


def test_call_in_flight_to_a_node_that_dies_fails_with_node_down() -> None:
    with LocalCluster(2, tick=1.0) as cluster:
        cluster.wait_full_mesh(timeout=15)
        client = cluster.client()
        target = cluster.names[1]
        client.call(target, f"{RPC}.close_gate")
        outcome: list[BaseException] = []

        def blocked() -> None:
            try:
                client.call(target, f"{RPC}.block", 60.0, timeout=60.0)
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=blocked)
        thread.start()
        wait_until(lambda: len(client._caller._pending) == 1, timeout=5)
        cluster.node(1).kill()
        thread.join(10)
        assert not thread.is_alive()
        assert len(outcome) == 1 and isinstance(outcome[0], hotmesh.NodeDown)


def test_node_restarted_on_a_new_port_before_anyone_noticed_is_accepted() -> None:
    with LocalCluster(3, tick=1.0) as cluster:
        cluster.wait_full_mesh(timeout=15)
        old_endpoint = cluster.endpoints[2]
        cluster.node(2).kill()
        cluster.node(2).restart(same_port=False)
        assert cluster.endpoints[2] != old_endpoint
        cluster.wait_full_mesh(timeout=15)
        assert (
            cluster.node(0).call("hotmesh._node.endpoint_of", cluster.names[2])
            == (cluster.endpoints[2])
        )


def test_stopped_node_says_goodbye(mesh3: LocalCluster, start_node: Any) -> None:
    node = start_node("leaver", seeds=[mesh3.endpoints[0]], cookie=mesh3.cookie)
    watcher = start_node("watcher", seeds=[mesh3.endpoints[0]], cookie=mesh3.cookie)
    assert watcher.wait_connected([node.name], timeout=10)
    events = Events(watcher)
    node.stop()
    wait_until(lambda: events.has("nodedown", node.name), timeout=5, message="nodedown")
    # Node 0 hears the bye on its own connection, maybe after the watcher did.
    wait_until(
        lambda: node.name not in mesh3.node(0).call("hotmesh._node.connected_nodes"),
        timeout=5,
        message="node 0 dropped the leaver",
    )
    assert f"nodedown {node.name} (stopped)" in mesh3.node(0).stderr_tail(200)


def test_duplicate_name_in_the_mesh_is_refused(
    mesh3: LocalCluster, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another state dir: this host's registry does not know the name, the mesh does.
    monkeypatch.setenv("HOTMESH_STATE_DIR", str(tmp_path / "elsewhere"))
    with pytest.raises(hotmesh.NameInUse, match="already in the mesh"):
        hotmesh.start(
            mesh3.node(1).short_name, seeds=[mesh3.endpoints[0]], cookie=mesh3.cookie, tick=1.0
        )
    assert mesh3.node(1).call("hotmesh._node.node_info")["pid"] == mesh3.node(1).pid
    mesh3.wait_full_mesh(timeout=5)


def test_duplicate_name_on_this_host_is_refused_by_the_registry(
    mesh3: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOTMESH_STATE_DIR", str(mesh3.state_root))
    with pytest.raises(hotmesh.NameInUse):
        hotmesh.start(mesh3.node(2).short_name, cookie=mesh3.cookie)


def test_monitor_nodes_reports_nodeup_and_can_be_cancelled(start_node: Any) -> None:
    a = start_node("mon-a")
    events = Events(a)
    b = start_node("mon-b", seeds=[a.endpoint])
    wait_until(lambda: events.has("nodeup", b.name), timeout=5, message="nodeup")
    events.cancel()
    b.stop()
    wait_until(lambda: b.name not in a.nodes(), timeout=5)
    assert not events.has("nodedown", b.name)


def test_frozen_node_is_reported_down_and_comes_back_by_itself() -> None:
    import signal

    with LocalCluster(3, tick=1.0) as cluster:
        cluster.wait_full_mesh(timeout=15)
        client = cluster.client()
        events = Events(client)
        frozen = cluster.node(1)
        frozen._proc.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
        try:
            wait_until(lambda: events.has("nodedown", frozen.name), timeout=3.0, message="down")
        finally:
            frozen._proc.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
        wait_until(lambda: events.seen[-1] == ("nodeup", frozen.name), timeout=10, message="up")
        assert client.call(frozen.name, "os.getpid") == frozen.pid
        cluster.wait_full_mesh(timeout=10)
