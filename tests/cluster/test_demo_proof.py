"""The proof: a rolling upgrade of 4 demo nodes under 16 live client connections, driven
by the v2 deploy snippet through ``hotmesh run``, loses nothing and drops nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotmesh.demo.cluster import DemoCluster
from hotmesh.service import service_status
from tests.waiting import wait_until

pytestmark = pytest.mark.cluster

SNIPPET = Path(__file__).resolve().parents[2] / "snippets" / "examples" / "demo_v2_records.py"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoCluster]:
    """4 demo nodes on v1 with 4 client connections each, v2 shipped to every disk."""
    demo = DemoCluster(4, connections=4, interval=0.005, directory=tmp_path / "demo").start()
    try:
        assert demo.traffic is not None
        wait_until(lambda: demo.traffic.snapshot().replies >= 64, timeout=15, message="v1 traffic")
        demo.ship("v2")
        yield demo
    finally:
        demo.stop()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("batch", [1, 4])
def test_rolling_upgrade_through_hotmesh_run_keeps_every_connection_and_request(
    demo: DemoCluster, batch: int
) -> None:
    env = dict(os.environ, HOTMESH_COOKIE_FILE=str(demo.cookie_file))
    argv = ["run", "demo1", str(SNIPPET), "--call", "rolling_upgrade", "None", str(batch)]
    done = subprocess.run(
        [sys.executable, "-m", "hotmesh", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "4 upgraded, 0 failed, 0 not started" in done.stdout
    versions = [demo.cluster.node(i).call("hotmesh.deploy.node_version") for i in range(4)]
    assert all(v.startswith("v2+") for v in versions), versions
    assert demo.traffic is not None
    seen = demo.traffic.snapshot().formats["v2"]
    wait_until(lambda: demo.traffic.snapshot().formats["v2"] >= seen + 64, timeout=15)
    # No client connection closed: every node still holds its 4 clients.
    assert [demo.cluster.node(i).call("hotmesh.demo.app.connections") for i in range(4)] == [4] * 4
    demo.cluster.client()  # an in-process node, so service_status(node=...) can ask
    for name in demo.names:
        status = service_status("demo", node=name)
        assert (status.status, status.restarts, status.pinned) == ("running", 0, False)
        assert status.last_migration is not None and status.last_migration.ok
    report = demo.stop_traffic()
    # Exactly once, in order, counts carried across code_change, nothing dropped.
    assert report.ok, (report.summary(), report.problems[:5])
    assert report.connections == 16
    assert report.formats["v1"] > 0 and report.formats["v2"] > 0
    assert report.formats["ERR"] == 0
