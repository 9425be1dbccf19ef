"""The demo cluster and ``hotmesh demo``: nodes, live clients, a live upgrade with nothing lost."""

from __future__ import annotations

import subprocess
import sys

import pytest

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


@pytest.mark.timeout(120)
@pytest.mark.parametrize("release", ["v2", "v1.1"])
def test_demo_command_without_terminal_upgrades_live_and_loses_nothing(release: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hotmesh",
            "demo",
            "--nodes",
            "2",
            "--connections",
            "1",
            "--ship",
            release,
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=100,
    )
    out = done.stdout
    assert done.returncode == 0, (out, done.stderr)
    assert f"release {release} is on every node's disk" in out
    for phase in ("before:", "during:", "after:", "traffic, whole run:"):
        assert phase in out, out
    assert "2 upgraded, 0 failed, 0 not started" in out
    whole = next(line for line in out.splitlines() if line.startswith("traffic, whole run:"))
    assert " 0 dropped, 0 errors" in whole and whole.endswith(" 0 problems"), whole
    if release == "v2":
        assert "formats v1=" in whole and "v2=" in whole, whole
        assert out.count(": v2+") == 2, out
