"""The worked deploy examples (snippets/examples/) run against demo nodes with live clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hotmesh.demo.cluster import DemoCluster
from tests.waiting import wait_until

pytestmark = pytest.mark.cluster

EXAMPLES = Path(__file__).resolve().parents[2] / "snippets" / "examples"

# Run on node 1 as if typed after pasting the snippet; shipped by source with it.
DRIVER = '''

def run_rollout():
    """rolling_upgrade() on this node; what it printed and how it ended."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            rolling_upgrade()
        except Exception as exc:
            return {"ok": False, "out": out.getvalue(), "error": repr(exc)}
    return {"ok": True, "out": out.getvalue()}


def run_dry_run():
    """rolling_upgrade(dry_run=True) on this node; what it printed and each node's plan."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        plans = rolling_upgrade(dry_run=True)
    return {"out": out.getvalue(), "plans": {n: dict(p) for n, p in plans.items()}}


def observe():
    """What a dry run must leave alone on this node: code, service, settings, files."""
    import hashlib
    from pathlib import Path

    from hotmesh import code, deploy, service, settings
    from hotmesh.deploy import _state

    dep = _state.current()
    status = service.service_status("demo").as_dict()
    files = {}
    settings_file = Path(dep.state_dir).parent / settings.FILE_NAME
    for root in (dep.release_path, dep.state_dir, settings_file):
        paths = [Path(root)] if Path(root).is_file() else sorted(Path(root).rglob("*"))
        for path in paths:
            if path.is_file() and "__pycache__" not in path.parts:
                files[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return {
        "version": deploy.node_version(),
        "code": {m: (c.hash, o.hash if o else None) for m, (c, o) in code.all_versions().items()},
        "service": {k: status[k] for k in ("module", "status", "vsn", "pinned", "restarts")},
        "settings": settings.snapshot(),
        "files": files,
    }
'''


def load_snippet(name: str, tmp_path: Path) -> dict[str, Any]:
    """The example plus the driver, defined as a console paste defines them."""
    path = tmp_path / name
    path.write_text((EXAMPLES / name).read_text() + DRIVER)
    namespace: dict[str, Any] = {"__name__": "__console__"}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace


@pytest.fixture
def demo() -> Iterator[DemoCluster]:
    """Three demo nodes on release v1, two live client connections each."""
    demo = DemoCluster(3, connections=2, interval=0.005).start()
    try:
        assert demo.traffic is not None
        wait_until(lambda: demo.traffic.snapshot().replies >= 30, timeout=15, message="traffic")
        yield demo
    finally:
        demo.stop()


def versions(demo: DemoCluster) -> list[str]:
    return [demo.cluster.node(i).call("hotmesh.deploy.node_version") for i in range(demo.size)]


@pytest.mark.timeout(90)
def test_bug_fix_example_rolls_v1_1_through_the_demo(demo: DemoCluster, tmp_path: Path) -> None:
    snippet = load_snippet("demo_v1_1_fix_get.py", tmp_path)
    demo.ship("v1.1")
    outcome = demo.cluster.node(0).call(snippet["run_rollout"], timeout=60)
    assert outcome["ok"], outcome
    print(outcome["out"])
    assert "3 upgraded, 0 failed" in outcome["out"]
    assert all(v.startswith("v1.1+") for v in versions(demo))
    report = demo.stop_traffic()
    assert report.ok, report.problems[:5]
    assert set(report.formats) == {"v1"}


@pytest.mark.timeout(90)
def test_state_change_example_upgrades_provisionally_confirms_and_survives_restart(
    demo: DemoCluster, tmp_path: Path
) -> None:
    snippet = load_snippet("demo_v2_records.py", tmp_path)
    demo.ship("v2")
    nodes = [demo.cluster.node(i) for i in range(demo.size)]
    # The dry run says, per node, what the rollout then does, the release's setting
    # included, and changes nothing anywhere.
    before = [node.call(snippet["observe"], timeout=30) for node in nodes]
    dry = nodes[0].call(snippet["run_dry_run"], timeout=60)
    assert [node.call(snippet["observe"], timeout=30) for node in nodes] == before
    print(dry["out"])
    action = "2026-11-24-demo-max-counters"
    for name in demo.names:
        plan = dry["plans"][name]
        assert plan["ok"] and plan["actions"] == [action], plan
        assert plan["settings"] == [
            {
                "action": action,
                "key": "demo.max_counters",
                "old": None,
                "new": 100_000,
                "was_set": False,
            }
        ]
        assert "service demo: demokv.server.code_change" in plan["hooks"], plan
        assert f"{name}  would load 2 modules, run {action}, set demo.max_counters" in dry["out"]
    outcome = demo.cluster.node(0).call(snippet["run_rollout"], timeout=60)
    assert outcome["ok"], outcome
    print(outcome["out"])
    assert "3 upgraded, 0 failed" in outcome["out"]
    assert all(v.startswith("v2+") for v in versions(demo))
    settings = [
        demo.cluster.node(i).call("hotmesh.settings.get", "demo.max_counters") for i in range(3)
    ]
    assert settings == [100_000] * 3
    assert demo.traffic is not None
    seen = demo.traffic.snapshot().formats["v2"]
    wait_until(lambda: demo.traffic.snapshot().formats["v2"] >= seen + 30, timeout=15)
    report = demo.stop_traffic()
    assert report.ok, report.problems[:5]
    assert report.formats["v1"] > 0
    assert report.formats["v2"] > 0
    # Confirmed on disk: a node killed and restarted comes back on v2.
    demo.cluster.node(2).kill()
    demo.cluster.node(2).restart()
    assert demo.cluster.node(2).call("hotmesh.deploy.node_version").startswith("v2+")
