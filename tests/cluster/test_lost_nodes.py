"""A node that dies is seen down in the fleet's tables until it is back, not left out.

Real ``hotmesh node`` processes: one is killed with SIGKILL; the others keep
redialling it, list it in ``Node.lost_nodes()``, and show it in ``hotmesh
status`` and ``node_versions()`` as unreachable ("down N s (connection
closed)"), with the partial exit status; once it restarts, it is up again and
listed as such. A node stopped cleanly is not listed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from hotmesh.testing import LocalCluster
from tests.waiting import wait_until

pytestmark = pytest.mark.cluster


def _status(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        HOTMESH_STATE_DIR=str(cluster.state_root), HOTMESH_COOKIE_FILE=str(cluster.cookie_file)
    )
    argv = [sys.executable, "-m", "hotmesh", "status", *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)


def test_a_killed_node_is_listed_down_until_it_is_back_and_a_stopped_one_is_not() -> None:
    with LocalCluster(3, tick=1.0) as cluster:
        cluster.wait_full_mesh(timeout=20)
        first, dead, third = (cluster.node(i) for i in range(3))
        dead.kill()
        wait_until(
            lambda: dead.name in first.call("hotmesh._node.lost_nodes"),
            timeout=10,
            message="the killed node is lost on the first",
        )
        why = first.call("hotmesh._node.lost_nodes")[dead.name]
        assert why.startswith("down ") and why.endswith(" s (connection closed)"), why

        done = _status(cluster, first.name, "--json")
        assert done.returncode == 1, done.stderr  # a node did not answer
        rows = {row["node"]: row for row in map(json.loads, done.stdout.splitlines())}
        assert sorted(rows) == sorted([first.name, dead.name, third.name])
        assert rows[dead.name]["unreachable"].endswith("(connection closed)")
        table = _status(cluster, first.name).stdout
        assert "unreachable: down " in table

        env = dict(os.environ)
        env.update(
            HOTMESH_STATE_DIR=str(cluster.state_root), HOTMESH_COOKIE_FILE=str(cluster.cookie_file)
        )
        shown = subprocess.run(  # no NODE: a node of this host is asked
            [sys.executable, "-m", "hotmesh", "versions", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert shown.returncode == 0, shown.stderr
        table = json.loads(shown.stdout)
        assert table[dead.name]["unreachable"].endswith("(connection closed)")
        assert "version" in table[third.name]

        versions = first.call("hotmesh.deploy.versions.node_statuses")
        assert versions[dead.name]["unreachable"].endswith("(connection closed)")
        assert "unreachable" not in versions[third.name]

        dead.restart()
        cluster.wait_full_mesh(timeout=20)
        assert first.call("hotmesh._node.lost_nodes") == {}
        assert _status(cluster, first.name).returncode == 0

        third.stop()  # SIGTERM: a clean stop says bye, and is not redialled
        wait_until(
            lambda: third.name not in first.call("hotmesh._node.connected_nodes"),
            timeout=10,
            message="the stopped node is down on the first",
        )
        assert first.call("hotmesh._node.lost_nodes") == {}
