"""Services on real node processes: calls across the mesh, and upgrade_node driving migrate."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import hotmesh
from hotmesh._errors import NoSuchService, ServiceCrashed
from hotmesh.service import service_call, service_cast, service_status, services
from hotmesh.testing import LocalCluster

pytestmark = pytest.mark.cluster

V1 = """
    __vsn__ = "1"

    def init(start):
        return start

    def handle_call(msg, state):
        if msg == "boom":
            raise ZeroDivisionError("boom on purpose")
        return ("v1", state), state

    def handle_cast(msg, state):
        return state + msg
"""

V2_GOOD = """
    __vsn__ = "2"

    def init(start):
        return {"count": start}

    def handle_call(msg, state):
        return ("v2", state), state

    def handle_cast(msg, state):
        return {"count": state["count"] + msg}

    def code_change(old_vsn, state):
        return {"count": state, "from": old_vsn}
"""

V2_BAD = """
    __vsn__ = "2"

    def handle_call(msg, state):
        return ("v2", state), state

    def code_change(old_vsn, state):
        raise KeyError("cannot migrate")
"""


def _write_release(root: Path, version: str, callbacks: str) -> None:
    (root / "hmsvc").mkdir(parents=True, exist_ok=True)
    (root / "hmsvc" / "__init__.py").write_text("")
    (root / "hmsvc" / "counter.py").write_text(textwrap.dedent(callbacks))
    (root / "hotmesh-release.toml").write_text(f'version = "{version}"\npackages = ["hmsvc"]\n')


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[LocalCluster, hotmesh.Node, Path]]:
    """Two nodes on release r1 (hmsvc.counter v1) with service 'counter' on node 1; a client."""
    release = tmp_path / "release"
    _write_release(release, "r1", V1)
    with LocalCluster(2, tick=2.0, release=release) as cluster:
        cluster.wait_full_mesh(timeout=15)
        cluster.node(0).call("hotmesh.service.start_service", "counter", "hmsvc.counter", 10)
        yield cluster, cluster.client(), release


@pytest.mark.timeout(60)
def test_calls_casts_and_crashes_cross_the_mesh(
    cluster: tuple[LocalCluster, hotmesh.Node, Path],
) -> None:
    mesh, _client, _release = cluster
    target = mesh.names[0]
    assert service_call("counter", "get", node=target) == ("v1", 10)
    service_cast("counter", 5, node=target)
    assert service_call("counter", "get", node=target) == ("v1", 15)
    with pytest.raises(ServiceCrashed, match="ZeroDivisionError: boom on purpose"):
        service_call("counter", "boom", node=target)
    assert service_call("counter", "get", node=target) == ("v1", 10)
    status = service_status("counter", node=target)
    assert (status.status, status.restarts) == ("running", 1)
    assert "boom on purpose" in (status.last_crash or "")
    with pytest.raises(NoSuchService):
        service_call("counter", "get", node=mesh.names[1])
    assert services(node=target) == ["counter"]


@pytest.mark.timeout(60)
def test_upgrade_node_migrates_the_service_state(
    cluster: tuple[LocalCluster, hotmesh.Node, Path],
) -> None:
    mesh, _client, release = cluster
    target = mesh.names[0]
    _write_release(release, "r2", V2_GOOD)
    report = mesh.node(0).call("hotmesh.deploy.upgrade_node", timeout=20)
    assert report["ok"], report
    assert service_call("counter", "get", node=target) == ("v2", {"count": 10, "from": "1"})
    status = service_status("counter", node=target)
    assert status.last_migration is not None
    assert status.last_migration.ok


@pytest.mark.timeout(60)
def test_failed_code_change_fails_upgrade_node_and_keeps_old_code_and_state(
    cluster: tuple[LocalCluster, hotmesh.Node, Path],
) -> None:
    mesh, client, release = cluster
    target = mesh.names[0]
    service_cast("counter", 1, node=target)
    _write_release(release, "r2", V2_BAD)
    with pytest.raises(hotmesh.RemoteError) as info:
        client.call(target, "hotmesh.deploy.upgrade_node", timeout=20)
    assert "migrate" in str(info.value)
    assert "cannot migrate" in str(info.value)
    assert service_call("counter", "get", node=target) == ("v1", 11)
    assert service_status("counter", node=target).status == "running"
