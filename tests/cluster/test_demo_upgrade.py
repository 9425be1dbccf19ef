"""The demo on real node processes: a live v1 -> v2 upgrade under client traffic."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hotmesh.demo.sources import install_release
from hotmesh.demo.traffic import Traffic
from hotmesh.service import service_status, services
from hotmesh.testing import LocalCluster
from tests.waiting import wait_until

pytestmark = pytest.mark.cluster


@pytest.fixture
def demo_cluster(tmp_path: Path) -> Iterator[tuple[LocalCluster, list[Path]]]:
    """Two nodes, each with its own release dir holding demokv v1, running the demo app."""
    releases = [tmp_path / f"release{i}" for i in range(2)]
    for release in releases:
        install_release("v1", release)
    with LocalCluster(
        2, tick=2.0, release=lambda i: releases[i], app="hotmesh.demo.app:start"
    ) as cluster:
        cluster.wait_full_mesh(timeout=15)
        yield cluster, releases


@pytest.mark.timeout(90)
def test_rolling_upgrade_under_traffic_keeps_every_connection_and_counter(
    demo_cluster: tuple[LocalCluster, list[Path]],
) -> None:
    cluster, releases = demo_cluster
    ports = [cluster.node(i).call("hotmesh.demo.app.port") for i in range(2)]
    assert all(ports)
    traffic = Traffic([("127.0.0.1", p) for p in ports], per_endpoint=4, interval=0.002)
    traffic.start()
    try:
        wait_until(lambda: traffic.snapshot().replies >= 80, timeout=15, message="v1 replies")
        assert [cluster.node(i).call("hotmesh.demo.app.connections") for i in range(2)] == [4, 4]
        for i, release in enumerate(releases):
            install_release("v2", release)  # new code on disk: nothing happens yet
            report = cluster.node(i).call("hotmesh.deploy.upgrade_node", timeout=20)
            assert report["ok"], report
            assert "demokv.server" in report["loaded"]
            assert report["new_version"].startswith("v2+")
        seen = traffic.snapshot().formats["v2"]
        wait_until(
            lambda: traffic.snapshot().formats["v2"] >= seen + 80, timeout=15, message="v2 replies"
        )
    finally:
        report = traffic.stop()
    assert report.ok, (report.summary(), report.problems[:5], cluster.logs())
    assert report.dropped == 0
    assert report.formats["v1"] > 0
    assert report.formats["v2"] > 0
    assert report.formats["ERR"] == 0
    client = cluster.client()
    for name in cluster.names:
        status = service_status("demo", node=name)
        assert (status.status, status.restarts, status.pinned) == ("running", 0, False)
        assert status.last_migration is not None
        assert status.last_migration.ok
    assert client.name not in services(node=cluster.names[0])
