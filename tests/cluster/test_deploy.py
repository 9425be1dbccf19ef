"""Deploys on real node processes: rolling upgrades driven by the snippet template
from node 1, a broken module stopping the rollout, actions run once across
restarts, and the airbag (revert on time, confirmation surviving a restart)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hotmesh import RemoteError
from hotmesh.code.server import PARTS
from hotmesh.testing import LocalCluster
from tests.cluster.deploy_snippet import TEMPLATE
from tests.waiting import wait_until

pytestmark = pytest.mark.cluster

PKG = "hmshop"


def write_release(directory: Path, version: str, price: str = "1") -> None:
    """A release of package hmshop: prices.price() answers ``price``."""
    pkg = directory / PKG
    pkg.mkdir(parents=True, exist_ok=True)
    (directory / "hotmesh-release.toml").write_text(
        f'version = "{version}"\npackages = ["{PKG}"]\n'
    )
    (pkg / "__init__.py").write_text("")
    (pkg / "app.py").write_text(
        "def start(node):\n    from hmshop import prices  # loaded at boot, like a service\n"
    )
    (pkg / "prices.py").write_text(f"def price():\n    return {price}\n")
    shutil.rmtree(pkg / "__pycache__", ignore_errors=True)


def _cluster(tmp_path: Path, size: int) -> Iterator[tuple[LocalCluster, list[Path]]]:
    dirs = [tmp_path / f"release-{i + 1}" for i in range(size)]
    for directory in dirs:
        write_release(directory, "v1")
    with LocalCluster(size, tick=2.0, release=lambda i: dirs[i], app=f"{PKG}.app:start") as cluster:
        cluster.wait_full_mesh(timeout=15)
        yield cluster, dirs


@pytest.fixture
def four(tmp_path: Path) -> Iterator[tuple[LocalCluster, list[Path]]]:
    """Four nodes, each on its own copy of release v1."""
    yield from _cluster(tmp_path, 4)


@pytest.fixture
def one(tmp_path: Path) -> Iterator[tuple[LocalCluster, list[Path]]]:
    """One node on release v1."""
    yield from _cluster(tmp_path, 1)


@pytest.fixture
def three(tmp_path: Path) -> Iterator[tuple[LocalCluster, list[Path]]]:
    """Three nodes, each on its own copy of release v1."""
    yield from _cluster(tmp_path, 3)


def kill_and_restart(node: Any) -> None:
    """SIGKILL a node and start it again under the same name."""
    old = node._proc
    node.kill()
    # LocalCluster's reader of the old process's stdout can mark the restarted
    # node ready at its EOF; let it finish first.
    wait_until(lambda: old.stdout.closed, timeout=5, message="old stdout drained")
    node.restart()


def price_on(cluster: LocalCluster, index: int) -> int:
    return cluster.node(index).call(f"{PKG}.prices.price")


def version_on(cluster: LocalCluster, index: int) -> str:
    return cluster.node(index).call("hotmesh.deploy.node_version")


def run_snippet(
    cluster: LocalCluster, tmp_path: Path, node: str, appended: str, *call: str
) -> subprocess.CompletedProcess[str]:
    """``hotmesh run NODE <template + appended> [--call ...]``, as an engineer runs it."""
    path = tmp_path / "deploy-2026-11-24.py"
    path.write_text(TEMPLATE.read_text() + appended)
    return cluster.cli("run", node, str(path), *(["--call", *call] if call else []))


@pytest.mark.timeout(90)
def test_rolling_upgrade_from_a_console_on_node_1_brings_every_node_to_v2(
    four: tuple[LocalCluster, list[Path]], tmp_path: Path
) -> None:
    cluster, dirs = four
    for directory in dirs:
        write_release(directory, "v2", price="2")
    session = (
        "\nprint('before:', sorted(set(v.split('+')[0] for v in node_versions().values())))"
        "\nplanned = rolling_upgrade(nodes_at('v1'), dry_run=True)"
        "\nprint(planned, planned.failing)"
        "\nprint(planned[node().name].diff())"
        "\nprint('after the dry run:', sorted(set(node_versions().values())), "
        "settings.get('cart.max_items'))"
        "\nrolling_upgrade(nodes_at('v1'))"
        "\nprint('left on v1:', nodes_at('v1'))\n"
    )

    done = run_snippet(cluster, tmp_path, cluster.node(0).short_name, session)

    assert done.returncode == 0, (done.stdout, done.stderr)
    lines = done.stdout.splitlines()
    assert "before: ['v1']" in lines
    # The dry run said what each node would do, and changed nothing.
    assert "dry run of a rolling upgrade of 4 node(s) in 4 batch(es): nothing changes" in lines
    for name in cluster.names:
        expected = (
            f"{name}  would load 1 module, run 2026-11-24-raise-cart-limit, set cart.max_items"
        )
        assert expected in lines, lines
    assert "<dry run of 4 node(s): 4 would upgrade, 0 would not> []" in lines
    assert "-    return 1" in lines and "+    return 2" in lines
    after = next(line for line in lines if line.startswith("after the dry run:"))
    assert after.count("v1+") == 1 and "v2+" not in after and after.endswith(" None"), after
    for name in cluster.names:
        assert any(line.startswith(f"{name}  ok, v1+") and "-> v2+" in line for line in lines)
    assert "4 upgraded, 0 failed, 0 not started" in done.stdout
    assert "left on v1: []" in lines
    assert [price_on(cluster, i) for i in range(4)] == [2, 2, 2, 2]
    assert all(version_on(cluster, i).startswith("v2+") for i in range(4))
    # The template's own action ran once on every node (a setting, live and on disk).
    assert [cluster.node(i).call("hotmesh.settings.get", "cart.max_items") for i in range(4)] == [
        50
    ] * 4


@pytest.mark.timeout(90)
def test_shipped_rollout_function_works_through_plain_calls(
    four: tuple[LocalCluster, list[Path]], snippet: dict[str, Any]
) -> None:
    cluster, dirs = four
    for directory in dirs:
        write_release(directory, "v2", price="2")
    outcome = cluster.node(1).call(snippet["run_rollout"], "v1", 2, timeout=60)
    assert outcome["ok"], outcome
    assert "4 upgraded, 0 failed, 0 not started" in outcome["out"]
    assert cluster.node(0).call(snippet["nodes_at"], "v2") == cluster.names
    # The library's own upgrade_node travels by name.
    for directory in dirs:
        write_release(directory, "v3", price="3")
    rollout = cluster.node(0).call(snippet["library_rollout"], "v2", timeout=60)
    assert rollout.endswith("4 upgraded, 0 failed, 0 not started")
    assert [price_on(cluster, i) for i in range(4)] == [3, 3, 3, 3]


@pytest.mark.timeout(90)
def test_broken_module_on_node_3_stops_the_rollout_there(
    four: tuple[LocalCluster, list[Path]], tmp_path: Path
) -> None:
    cluster, dirs = four
    for i, directory in enumerate(dirs):
        write_release(directory, "v2", price="2")
        if i == 2:
            (directory / PKG / "prices.py").write_text("def price(:\n    return 2\n")

    done = run_snippet(cluster, tmp_path, cluster.node(0).short_name, "", "rolling_upgrade")

    assert done.returncode == 1, (done.stdout, done.stderr)
    assert f"{cluster.names[2]}  FAILED at load" in done.stdout
    assert "2 upgraded, 1 failed, 1 not started" in done.stdout
    assert f"UpgradeError: upgrade of {cluster.names[2]} failed at load" in done.stderr
    assert "prices" in done.stderr
    assert [version_on(cluster, i).split("+")[0] for i in range(4)] == ["v2", "v2", "v1", "v1"]
    assert [price_on(cluster, i) for i in range(4)] == [2, 2, 1, 1]


@pytest.mark.timeout(60)
def test_actions_run_once_per_node_even_across_a_restart(
    one: tuple[LocalCluster, list[Path]], snippet: dict[str, Any]
) -> None:
    cluster, dirs = one
    node = cluster.node(0)
    write_release(dirs[0], "v2", price="2")
    assert node.call(snippet["upgrade_counting"])["actions"] == ["2026-11-24-count"]
    assert node.call(snippet["upgrade_counting"])["actions"] == []
    kill_and_restart(node)
    assert node.call(snippet["upgrade_counting"])["actions"] == []
    assert node.call(snippet["action_runs"]) == 1


@pytest.mark.timeout(60)
def test_unconfirmed_provisional_upgrade_reverts_within_the_window(
    one: tuple[LocalCluster, list[Path]], snippet: dict[str, Any]
) -> None:
    cluster, dirs = one
    before = version_on(cluster, 0)
    write_release(dirs[0], "v2", price="2")
    # A window long enough that a loaded machine still sees the new code inside it.
    report = cluster.node(0).call(snippet["upgrade_node"], 2.0)
    assert report["provisional"] == 2.0
    assert price_on(cluster, 0) == 2
    wait_until(lambda: price_on(cluster, 0) == 1, timeout=10, message="airbag revert")
    assert version_on(cluster, 0) == before
    # On time by the node's own clock (the record it keeps), not by how fast we polled.
    record = json.loads((cluster.node(0).state_dir / "deploy" / "provisional.json").read_text())
    assert record["state"] == "reverted"
    assert record["reason"] == "not confirmed within 2 s"
    assert 1.9 < record["decided_at"] - record["started_at"] < 2.0 + 1.0
    with pytest.raises(RemoteError, match="too late"):
        cluster.node(0).call("hotmesh.deploy.confirm", timeout=15)


@pytest.mark.timeout(60)
def test_confirmed_upgrade_survives_a_kill_and_an_unconfirmed_one_does_not(
    one: tuple[LocalCluster, list[Path]], snippet: dict[str, Any]
) -> None:
    cluster, dirs = one
    node = cluster.node(0)
    write_release(dirs[0], "v2", price="2")
    node.call(snippet["upgrade_node"], 30)
    assert node.call("hotmesh.deploy.confirm").startswith("confirmed v2+")
    kill_and_restart(node)
    assert price_on(cluster, 0) == 2
    assert version_on(cluster, 0).startswith("v2+")

    write_release(dirs[0], "v3", price="3")
    node.call("hotmesh.deploy.upgrade_node", provisional=30)
    assert price_on(cluster, 0) == 3
    kill_and_restart(node)
    assert price_on(cluster, 0) == 2
    assert version_on(cluster, 0).startswith("v2+")
    assert "return 2" in (dirs[0] / PKG / "prices.py").read_text()


def test_a_node_with_a_release_loads_the_code_server_parts_once_settled(tmp_path: Path) -> None:
    # Not at its start (the app, which runs right after it, finds the stale check
    # unloaded); two ticks later, so that its first upgrade does not import them.
    release = tmp_path / "release"
    write_release(release, "v1")
    (release / PKG / "app.py").write_text(
        "import sys\n"
        "def start(node):\n"
        "    print('STALE CHECK AT START', 'hotmesh.code.stale' in sys.modules, flush=True)\n"
    )
    with LocalCluster(1, tick=1.0, release=lambda i: release, app=f"{PKG}.app:start") as cluster:
        node = cluster.node(0)
        assert "STALE CHECK AT START False" in node.stdout_lines
        wait_until(
            lambda: all(node.call("sys:modules.__contains__", p) for p in PARTS),
            timeout=30,
            message="the code server's parts loaded",
        )


@pytest.mark.timeout(90)
def test_a_node_restarted_on_the_release_before_the_fleets_is_flagged_by_the_upgraded_nodes(
    three: tuple[LocalCluster, list[Path]],
) -> None:
    cluster, dirs = three
    for index in (0, 1):
        write_release(dirs[index], "v2", price="2")
        cluster.node(index).call("hotmesh.deploy.upgrade_node", timeout=30)
    laggard = cluster.node(2)
    kill_and_restart(laggard)  # back on its v1 files
    cluster.wait_full_mesh(timeout=30)
    notice = f"{laggard.name} joined behind the fleet's release"
    # Whichever node of each pair tells its status, both upgraded nodes judge
    # the newcomer (one cast per pair) and log it; the newcomer flags nobody.
    wait_until(
        lambda: all(notice in cluster.node(i).stderr_tail(200) for i in (0, 1)),
        timeout=30,
        message="the upgraded nodes flag the newcomer",
    )
    assert "joined behind" not in laggard.stderr_tail(200)
