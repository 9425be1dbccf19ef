"""The demo cluster (``python -m hotmesh.demo``): nodes, live clients, v2 shipped to disk."""

from __future__ import annotations

import pytest

from hotmesh.demo.__main__ import main
from hotmesh.demo.cluster import DemoCluster
from tests.waiting import wait_until

pytestmark = pytest.mark.cluster


@pytest.mark.timeout(90)
def test_demo_cluster_upgrades_from_a_node_with_clients_connected() -> None:
    demo = DemoCluster(2, connections=2, interval=0.005).start()
    try:
        assert demo.traffic is not None
        wait_until(lambda: demo.traffic.snapshot().replies >= 20, timeout=15, message="replies")
        assert all(": v1+" in line and "2 clients" in line for line in demo.node_status())
        demo.ship("v2")
        for i in range(2):
            assert demo.cluster.node(i).call("hotmesh.deploy.upgrade_node", timeout=20)["ok"]
        seen = demo.traffic.snapshot().formats["v2"]
        wait_until(
            lambda: demo.traffic.snapshot().formats["v2"] >= seen + 20, timeout=15, message="v2"
        )
        assert all(": v2+" in line for line in demo.node_status())
    finally:
        report = demo.stop()
    assert report.ok, report.problems[:5]
    assert report.formats["v1"] > 0
    assert report.formats["v2"] > 0


@pytest.mark.timeout(90)
def test_demo_command_prints_how_to_attach_and_a_clean_traffic_report(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main(["--nodes", "2", "--connections", "1", "--every", "0.2", "--duration", "0.6"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "hotmesh attach demo1" in out
    assert "HOTMESH_COOKIE_FILE=" in out
    assert "release v2 is on every node's disk" in out
    assert "0 dropped" in out
