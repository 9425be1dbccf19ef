"""Settings on real node processes: one call changes every node, live and on
disk, and a node killed with SIGKILL comes back with its settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hotmesh.testing import LocalCluster
from tests.cluster.clusters import local_cluster
from tests.cluster.test_deploy import kill_and_restart

pytestmark = pytest.mark.cluster

DRIVERS = """
def set_everywhere(key, value, share=None):
    from hotmesh import settings

    applied = settings.set(key, value, nodes="all", share=share)
    return {"values": applied.values, "failed": applied.failed}


def enable_for_share(name, share):
    from hotmesh import settings

    applied = settings.enable(name, share=share)
    return sorted(n for n, v in applied.values.items() if v)


def feature_on(name):
    from hotmesh import settings

    return settings.feature(name)
"""


@pytest.fixture
def drivers(tmp_path: Path) -> dict[str, Any]:
    """Functions defined as a console session defines them (shipped by source)."""
    path = tmp_path / "settings_snippet.py"
    path.write_text(DRIVERS)
    namespace: dict[str, Any] = {"__name__": "__console__"}
    exec(compile(DRIVERS, str(path), "exec"), namespace)
    return namespace


@pytest.fixture
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with local_cluster(tmp_path_factory, 3, tick=2.0) as cluster:
        yield cluster


@pytest.mark.timeout(60)
def test_setting_on_all_survives_kill_9_and_restart(
    three: LocalCluster, drivers: dict[str, Any]
) -> None:
    outcome = three.node(0).call(drivers["set_everywhere"], "pool.size", 32)
    assert outcome == {"values": dict.fromkeys(three.names, 32), "failed": {}}
    assert [three.node(i).call("hotmesh.settings.get", "pool.size") for i in range(3)] == [32] * 3
    victim = three.node(2)
    kill_and_restart(victim)
    assert victim.call("hotmesh.settings.get", "pool.size") == 32


@pytest.mark.timeout(60)
def test_feature_share_picks_the_same_nodes_every_time(
    three: LocalCluster, drivers: dict[str, Any]
) -> None:
    chosen = three.node(0).call(drivers["enable_for_share"], "fast_path", 0.5)
    again = three.node(1).call(drivers["enable_for_share"], "fast_path", 0.5)
    assert chosen == again
    on = [three.node(i).call(drivers["feature_on"], "fast_path") for i in range(3)]
    assert [name for name, flag in zip(three.names, on, strict=True) if flag] == chosen
    everyone = three.node(0).call(drivers["enable_for_share"], "fast_path", 1.0)
    assert everyone == sorted(three.names)
