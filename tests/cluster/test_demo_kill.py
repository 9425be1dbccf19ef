"""The proof, part 3: a node killed with SIGKILL in the middle of a rolling upgrade to v2
leaves the rest of the mesh healthy: the rollout reports it, the other nodes' clients
see nothing, the restarted node rejoins on the release on its disk and runs, as it
starts, v2's upgrade action it never reached (exactly once: it is at v2 with the
upgraded nodes' version), and the snippet's rollout run again upgrades only what is
left."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotmesh.demo.cluster import DemoCluster
from hotmesh.demo.traffic import Traffic
from tests.cluster.demos import V2_SNIPPET, v2_shipped
from tests.waiting import wait_until

pytestmark = pytest.mark.cluster

CONNECTIONS = 4  # client connections per node
KILLED = 2  # index of the node killed mid-rollout: demo3, not upgraded yet when it dies
PAUSE = 2.0  # seconds between batches: the rollout is observably in the middle

# Appended to the example snippet for the run that must not stop at the dead node:
# the example's rolling_upgrade keeps deploy.rolling_upgrade's stop_on_error=True.
KEEP_GOING = '''

def rolling_upgrade_past_failures(nodes, pause):
    """The example's rollout, one node at a time, going on past a failed node."""
    return deploy.rolling_upgrade(
        nodes, upgrade=upgrade_node, batch=1, pause=pause,
        check=confirm_when_healthy, stop_on_error=False,
    )
'''


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoCluster]:
    """4 demo nodes on v1 with 4 client connections each, v2 shipped to every disk."""
    with v2_shipped(tmp_path / "demo", connections=CONNECTIONS) as demo:
        yield demo


def start_rollout(demo: DemoCluster, snippet: Path, call: list[str]) -> subprocess.Popen[str]:
    """``hotmesh run demo1 SNIPPET --call ...`` in the background (output to pipes)."""
    argv = [sys.executable, "-m", "hotmesh", "run", "demo1", str(snippet), "--call", *call]
    return subprocess.Popen(
        argv,
        env=demo.cluster.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def version_of(demo: DemoCluster, index: int) -> str:
    """The release version node ``index`` reports (empty while it cannot answer)."""
    try:
        return str(demo.cluster.node(index).call("hotmesh.deploy.node_version", timeout=2.0))
    except Exception:
        return ""


def connection_of(problem: str) -> int:
    """The client connection index a problem line of the traffic report is about."""
    found = re.match(r"connection (\d+):", problem)
    assert found, problem
    return int(found[1])


@pytest.mark.cluster
@pytest.mark.timeout(120)
@pytest.mark.parametrize("stop_on_error", [True, False], ids=["stop-on-error", "keep-going"])
def test_node_killed_mid_rollout_leaves_the_rest_of_the_mesh_healthy(
    demo: DemoCluster, tmp_path: Path, stop_on_error: bool
) -> None:
    names = demo.names
    killed = demo.cluster.node(KILLED)
    survivors = [i for i in range(demo.size) if i != KILLED]
    if stop_on_error:
        rollout = start_rollout(demo, V2_SNIPPET, ["rolling_upgrade", repr(names), "1", str(PAUSE)])
    else:
        snippet = tmp_path / "demo_v2_keep_going.py"
        snippet.write_text(V2_SNIPPET.read_text(encoding="utf-8") + KEEP_GOING, encoding="utf-8")
        call = ["rolling_upgrade_past_failures", repr(names), str(PAUSE)]
        rollout = start_rollout(demo, snippet, call)
    try:
        # In the middle: demo1 runs v2, demo3 has not been reached (a pause away at least).
        wait_until(lambda: version_of(demo, 0).startswith("v2+"), timeout=30, message="demo1 v2")
        assert version_of(demo, KILLED).startswith("v1+")
        killed.kill()
        out, err = rollout.communicate(timeout=60)
    finally:
        if rollout.poll() is None:
            rollout.kill()
            rollout.communicate()

    # The rollout reports the dead node as failed and stops there, or goes on, as asked.
    assert rollout.returncode == 1, (out, err)
    assert "UpgradeError" in err and names[KILLED] in err, err
    failed_row = re.search(rf"^{re.escape(names[KILLED])}\s+FAILED\s+call: .*$", out, re.M)
    assert failed_row, out
    assert re.search(r"down|unreachable|not connected", failed_row[0], re.I), failed_row[0]
    v2 = version_of(demo, 0)
    if stop_on_error:
        assert "2 upgraded, 1 failed, 1 not started" in out, out
        assert f"stopped: {names[KILLED]} failed at call" in out, out
        assert re.search(rf"^{re.escape(names[3])}\s+skipped\s+not started", out, re.M), out
        assert [version_of(demo, i) for i in survivors] == [v2, v2, version_of(demo, 3)]
        assert version_of(demo, 3).startswith("v1+")
    else:
        assert "3 upgraded, 1 failed, 0 not started" in out, out
        assert [version_of(demo, i) for i in survivors] == [v2] * 3

    # The mesh reports the node down: no survivor lists it among its peers.
    def forgotten() -> bool:
        return all(
            names[KILLED] not in demo.cluster.node(i).call("hotmesh._node.connected_nodes")
            for i in survivors
        )

    wait_until(forgotten, timeout=15, message=f"survivors list {names[KILLED]} as down")

    # The survivors' clients saw nothing: every connection still open, replies keep coming.
    assert demo.traffic is not None
    seen = demo.traffic.snapshot().replies
    wait_until(lambda: demo.traffic.snapshot().replies >= seen + 64, timeout=15, message="replies")
    assert [demo.cluster.node(i).call("hotmesh.demo.app.connections") for i in survivors] == [
        CONNECTIONS
    ] * 3

    # The restarted node rejoins the full mesh on the release now on its disk (v2),
    # and ran v2's upgrade action as it started, which it never reached in the
    # rollout: the setting is there, its version is the upgraded nodes', it is at v2.
    action = "2026-11-24-demo-max-counters"
    limit = "demo.max_counters"
    killed.restart()
    demo.cluster.wait_full_mesh(timeout=20)
    assert killed.call("hotmesh.settings.get", limit) == 100_000
    assert version_of(demo, KILLED) == v2
    assert f"upgrade action {action} of v2 ran at start" in killed.stderr_tail(400)
    port = int(killed.call("hotmesh.demo.app.port"))
    fresh = Traffic([("127.0.0.1", port)], per_endpoint=2, max_requests=20, interval=0.0).start()
    assert fresh.wait_done(15)
    fresh_report = fresh.stop()
    assert fresh_report.ok, (fresh_report.summary(), fresh_report.problems[:5])
    assert fresh_report.formats["v2"] == 40, fresh_report.summary()
    table = demo.cluster.cli("versions", "demo1", "--json", timeout=30)
    assert table.returncode == 0, table.stderr
    shown = json.loads(table.stdout)
    assert shown[names[KILLED]]["pending"] == [] and shown[names[KILLED]]["version"] == v2, shown
    at_v2 = demo.cluster.node(0).call("hotmesh.deploy.nodes_at", "v2")
    assert names[KILLED] in at_v2 and names[0] in at_v2
    # Nobody flags it as behind when it comes up (the node said it was not ready
    # until its action had run).
    assert "joined on v2 with upgrade actions pending" not in demo.cluster.node(0).stderr_tail(400)

    # The snippet's rollout, run again with no arguments, upgrades what the truth
    # requires: demo4 when the first run stopped before it, and not the restarted node.
    left = [names[3]] if stop_on_error else []
    finish = demo.cluster.cli(
        "run", "demo1", str(V2_SNIPPET), "--call", "rolling_upgrade", timeout=60
    )
    assert finish.returncode == 0, (finish.stdout, finish.stderr)
    assert f"{len(left)} upgraded, 0 failed, 0 not started" in finish.stdout, finish.stdout
    assert not re.search(rf"^{re.escape(names[KILLED])}\s+ok", finish.stdout, re.M), finish.stdout
    assert [version_of(demo, i) for i in range(demo.size)] == [v2] * demo.size
    # Exactly once on the restarted node: one record, one entry in its history that ran
    # it (at start).
    deploy_dir = killed.state_dir / "deploy"
    records = json.loads((deploy_dir / "actions.json").read_text())
    assert [k for k in records if k.endswith(action)] == [f"v2/{action}"]
    history = [json.loads(line) for line in (deploy_dir / "history.jsonl").read_text().splitlines()]
    ran = [entry for entry in history if action in entry["actions"]]
    assert len(ran) == 1 and ran[0]["at_start"], history
    settled = [demo.cluster.node(i).call("hotmesh.settings.get", limit) for i in range(demo.size)]
    assert settled == [100_000] * demo.size

    report = demo.stop_traffic()
    # Only the killed node's own connections dropped, once each, losing at most the
    # request each had in flight; every other connection: exactly once, in order.
    own = range(KILLED * CONNECTIONS, (KILLED + 1) * CONNECTIONS)
    elsewhere = [p for p in report.problems if connection_of(p) not in own]
    assert elsewhere == [], (report.summary(), elsewhere[:5])
    assert sorted({connection_of(p) for p in report.problems}) == list(own)
    assert report.dropped == CONNECTIONS, report.summary()
    assert 0 <= report.requests - report.replies <= CONNECTIONS, report.summary()
    assert report.formats["ERR"] == 0
    assert report.formats["v1"] > 0 and report.formats["v2"] > 0
