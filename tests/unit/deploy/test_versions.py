"""What one node reports about itself: version with its actions (run at start when
it starts on a release), pending actions, provisional time left, drift, and when it
was last upgraded (across a restart)."""

from __future__ import annotations

import json

from hotmesh import settings
from hotmesh.deploy import _state, confirm, node_status, node_version, upgrade_node
from hotmesh.deploy._newcomers import behind_notice
from hotmesh.deploy.fleet import fleet_view
from hotmesh.deploy.versions import release_status
from tests.unit.deploy.conftest import Release

ACTION = '[[actions]]\nid = "rel-1"\ncall = "PKG.migrate:run"\n'
LIMIT = '[[actions]]\nid = "rel-limit"\nsettings = { "rel.limit" = 100 }\n'


def test_node_started_on_a_release_runs_its_actions_not_yet_run_there_once(
    release: Release,
) -> None:
    release.write("migrate", "DONE = []\n\ndef run():\n    DONE.append('yes')\n")
    release.manifest("v2", ACTION.replace("PKG", release.pkg) + LIMIT)
    release.halt()
    try:
        release.boot()  # restarted onto the v2 files: v2's actions never ran here
        assert release.imp("migrate").DONE == ["yes"]
        assert settings.get("rel.limit") == 100
        status = node_status()
        assert status["version"].startswith("v2+") and status["ready"]
        assert (status["pending"], status["done"]) == ([], ["rel-1", "rel-limit"])
        history = (release.state_dir / "deploy" / "history.jsonl").read_text().splitlines()
        last = json.loads(history[-1])
        assert last["at_start"] and last["actions"] == ["rel-1", "rel-limit"]
        assert last["new_version"] == status["version"] == node_version()
        assert _state.current().upgraded_at == last["at"]
        # Recorded once: neither a restart nor an upgrade runs them again.
        release.halt()
        release.boot()
        assert release.imp("migrate").DONE == []
        assert node_status()["version"] == status["version"]
        assert upgrade_node().actions == []
    finally:
        settings.apply_local("rel.limit", False, None, "test")


def test_an_action_that_raises_at_start_stays_pending_until_an_upgrade_runs_it(
    release: Release,
) -> None:
    release.write("migrate", "def run():\n    raise RuntimeError('store unreachable')\n")
    release.manifest("v2", ACTION.replace("PKG", release.pkg) + LIMIT)
    release.halt()
    try:
        release.boot()  # the node starts all the same
        status = node_status()
        why = "rel-1 (failed at start: RuntimeError: store unreachable)"
        assert (status["pending"], status["done"]) == ([why, "rel-limit"], [])
        assert_release_status_agrees()
        assert settings.get("rel.limit") is None  # the actions after it did not run
        # Not at v2: nodes_at leaves it out, nodes_not_at (the rollout's list) has it,
        # also beside a node of v2 that ran both (one line per pending id).
        ran = {**status, "node": "b@h", "pending": [], "done": ["rel-1", "rel-limit"]}
        view = fleet_view({"a@h": status, "b@h": ran})
        assert not view["a@h"].is_at("v2") and view["b@h"].is_at("v2")
        assert view["a@h"].pending == (why, "rel-limit")
        # Fixed on disk: the upgrade (what rolling_upgrade runs) loads it and runs both.
        release.write("migrate", "def run():\n    return None\n")
        report = upgrade_node()
        assert report.actions == ["rel-1", "rel-limit"]
        assert node_status()["pending"] == [] and settings.get("rel.limit") == 100
        assert_release_status_agrees()
    finally:
        settings.apply_local("rel.limit", False, None, "test")


def test_provisional_time_left_and_drift_are_reported(release: Release) -> None:
    release.imp("shop")
    assert node_status()["drift"] == []
    release.write("shop", "def answer():\n    return 2\n")
    assert node_status()["drift"] == [release.mod("shop")]
    upgrade_node(provisional=60)
    status = node_status()
    assert status["drift"] == []
    assert 50 < status["provisional_left"] <= 60
    confirm()
    assert node_status()["provisional_left"] is None


def test_last_upgrade_time_survives_a_restart(release: Release) -> None:
    release.imp("shop")
    assert node_status()["upgraded_at"] is None
    release.write("shop", "def answer():\n    return 2\n")
    release.manifest("v2")
    upgrade_node()
    upgraded_at = node_status()["upgraded_at"]
    assert upgraded_at is not None
    release.halt()
    release.boot()
    assert _state.current().upgraded_at == upgraded_at


def assert_release_status_agrees() -> None:
    """What a node tells newcomers is node_status()'s release part, to the letter."""
    full = node_status()
    assert release_status() == {key: full[key] for key in release_status()}
    assert set(release_status()) == {"node", "version", "done", "pending", "ready", "upgraded_at"}
    assert release_status()["version"] == node_version()


def test_a_node_upgraded_flags_a_newcomer_on_the_older_release_by_what_it_is_told(
    release: Release,
) -> None:
    release.imp("shop")
    release.write("shop", "def answer():\n    return 2\n")
    release.manifest("v2")
    upgrade_node()
    assert_release_status_agrees()
    # What an upgraded node tells and judges by carries the time of its upgrade:
    # that is how the fleet's release is told from a newcomer's older one.
    mine = release_status()
    older = {"node": "b@h", "version": "v1+bbbb2222", "done": [], "pending": []}
    text = behind_notice(mine, {**older, "ready": True, "upgraded_at": None})
    assert text is not None and "b@h joined behind the fleet's release" in text


def test_what_newcomers_are_told_follows_an_upgrade_to_another_manifest(
    release: Release,
) -> None:
    release.write("migrate", "def run():\n    return None\n")
    release.manifest("v2", ACTION.replace("PKG", release.pkg))
    release.halt()
    try:
        release.boot()
        assert_release_status_agrees()
        assert release_status()["done"] == ["rel-1"]
        release.manifest("v3", ACTION.replace("PKG", release.pkg) + LIMIT)
        upgrade_node()
        assert_release_status_agrees()
        assert release_status()["version"].startswith("v3+")
        assert release_status()["done"] == ["rel-1", "rel-limit"]
    finally:
        settings.apply_local("rel.limit", False, None, "test")
