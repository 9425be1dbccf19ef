"""The tutorial on the demo cluster: the snippet template upgrades every node
under live client traffic, and a provisional upgrade reverts with its service,
with no request lost and no connection dropped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hotmesh.demo.cluster import DemoCluster
from tests.waiting import wait_until

pytestmark = pytest.mark.cluster


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoCluster]:
    cluster = DemoCluster(3, directory=tmp_path / "demo").start()
    try:
        cluster.ship("v2")
        yield cluster
    finally:
        cluster.stop()


def _v2_replies(demo: DemoCluster) -> int:
    assert demo.traffic is not None
    return demo.traffic.snapshot().formats["v2"]


@pytest.mark.timeout(90)
def test_tutorial_upgrades_the_demo_without_dropping_anything(
    demo: DemoCluster, snippet: dict[str, Any]
) -> None:
    first = demo.cluster.node(0)
    assert all(v.startswith("v1+") for v in first.call(snippet["node_versions"]).values())
    report = first.call(snippet["upgrade_node"], timeout=30)
    assert report["ok"] and "demokv.server" in report["loaded"]
    assert first.call(snippet["upgrade_node"], timeout=30)["loaded"] == []
    assert first.call(snippet["nodes_at"], "v1") == demo.names[1:]
    outcome = first.call(snippet["run_rollout"], "v1", timeout=60)
    assert outcome["ok"], outcome
    versions = first.call(snippet["node_versions"])
    assert len(set(versions.values())) == 1
    assert next(iter(versions.values())).startswith("v2+")
    wait_until(lambda: _v2_replies(demo) >= 30, timeout=15, message="v2 replies")
    assert demo.traffic is not None
    report = demo.traffic.stop()
    demo.traffic = None
    assert report.ok, (report.summary(), report.problems[:5])
    assert report.dropped == 0


@pytest.mark.timeout(90)
def test_provisional_upgrade_of_the_demo_reverts_with_its_service(
    demo: DemoCluster, snippet: dict[str, Any]
) -> None:
    node = demo.cluster.node(1)
    before = node.call("hotmesh.deploy.node_version")
    service_before = node.call("hotmesh.service._remote.status", "demo", None, 5.0)
    report = node.call(snippet["upgrade_node"], 2.0, timeout=30)
    assert report["provisional"] == 2.0
    seen = _v2_replies(demo)
    wait_until(lambda: _v2_replies(demo) > seen, timeout=10, message="v2 replies")
    wait_until(
        lambda: node.call("hotmesh.deploy.node_version") == before,
        timeout=10,
        message="airbag revert",
    )
    status = node.call("hotmesh.service._remote.status", "demo", None, 5.0)
    assert status["status"] == "running"
    wait_until(
        lambda: (
            node.call("hotmesh.service._remote.status", "demo", None, 5.0)["vsn"]
            == service_before["vsn"]
        ),
        timeout=10,
        message="service back on its v1 code",
    )
    assert demo.traffic is not None
    report = demo.traffic.stop()
    demo.traffic = None
    assert report.ok, (report.summary(), report.problems[:5])
    assert report.dropped == 0
