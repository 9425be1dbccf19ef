"""What one node reports about itself: version with its actions, pending actions,
provisional time left, drift, and when it was last upgraded (across a restart)."""

from __future__ import annotations

from hotmesh.deploy import _state, confirm, node_status, node_version, upgrade_node
from tests.unit.deploy.conftest import Release

ACTION = '[[actions]]\nid = "rel-1"\ncall = "PKG.migrate:run"\n'


def test_node_started_on_a_release_whose_action_never_ran_reports_it_pending(
    release: Release,
) -> None:
    release.write("migrate", "DONE = []\n\ndef run():\n    DONE.append('yes')\n")
    release.manifest("v2", ACTION.replace("PKG", release.pkg))
    release.halt()
    release.boot()  # restarted onto the v2 files: v2's action never ran here
    status = node_status()
    assert status["version"].startswith("v2+")
    assert status["pending"] == ["rel-1"] and status["done"] == []
    before = node_version()
    report = upgrade_node()  # nothing to load: the pending action runs, once
    assert (report.loaded, report.actions) == ([], ["rel-1"])
    after = node_status()
    assert after["pending"] == [] and after["done"] == ["rel-1"]
    # Same code, but the action now done: another version.
    assert after["version"] != before and report.new_version == after["version"]
    assert upgrade_node().actions == []


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
