"""The proof: a rolling upgrade of 4 demo nodes under 16 live client connections, driven
by the v2 deploy snippet through ``hotmesh run``, loses nothing and drops nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hotmesh.demo.cluster import DemoCluster
from hotmesh.service import service_status
from tests.cluster.demos import V2_SNIPPET, v2_shipped
from tests.waiting import wait_until

pytestmark = pytest.mark.cluster


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoCluster]:
    """4 demo nodes on v1 with 4 client connections each, v2 shipped to every disk."""
    with v2_shipped(tmp_path / "demo", connections=4) as demo:
        yield demo


@pytest.mark.timeout(120)
@pytest.mark.parametrize("batch", [1, 4])
def test_rolling_upgrade_through_hotmesh_run_keeps_every_connection_and_request(
    demo: DemoCluster, batch: int
) -> None:
    argv = ["run", "demo1", str(V2_SNIPPET), "--call", "rolling_upgrade", "None", str(batch)]
    done = demo.cluster.cli(*argv, timeout=90)
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
