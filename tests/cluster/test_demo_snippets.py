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
