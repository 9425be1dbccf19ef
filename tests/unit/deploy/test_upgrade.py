"""upgrade_node in one process against the real code server."""

from __future__ import annotations

import json
import sys
import threading

import pytest

import hotmesh.code as code
from hotmesh import UpgradeError
from hotmesh.deploy import _job, node_version, reset_action, upgrade_action, upgrade_node
from hotmesh.deploy.release import release_of
from tests.unit.deploy.conftest import Release


def test_modified_module_is_loaded_and_the_version_moves(release: Release) -> None:
    shop = release.imp("shop")
    before = node_version()
    assert release_of(before) == "v1"
    release.write("shop", "def answer():\n    return 2\n")
    release.manifest("v2")
    report = upgrade_node()
    assert report.ok
    assert report.loaded == [release.mod("shop")]
    assert shop.answer() == 2
    assert report.old_version == before
    assert report.new_version == node_version()
    assert release_of(report.new_version) == "v2"
    assert report.lingering == []
    history = (release.state_dir / "deploy" / "history.jsonl").read_text().splitlines()
    assert json.loads(history[-1])["new_version"] == report.new_version


def test_second_upgrade_is_a_harmless_ok(release: Release) -> None:
    release.imp("shop")
    release.write("shop", "def answer():\n    return 2\n")
    upgrade_node()
    again = upgrade_node()
    assert again.ok
    assert again.loaded == []
    assert again.actions == []
    assert not again.changed
    assert again.old_version == again.new_version


def test_new_module_is_loaded_but_unimported_old_ones_are_not(release: Release) -> None:
    release.imp("shop")
    release.write("shop", "from PKG import helper\n\ndef answer():\n    return helper.value()\n")
    release.write("helper", "def value():\n    return 42\n")
    report = upgrade_node()
    assert sorted(report.loaded) == sorted([release.mod("shop"), release.mod("helper")])
    assert release.imp("shop").answer() == 42


def test_syntax_error_fails_at_load_and_changes_nothing(release: Release) -> None:
    shop = release.imp("shop")
    before = node_version()
    release.write("shop", "def answer(:\n")
    release.manifest("v2")
    with pytest.raises(UpgradeError) as info:
        upgrade_node()
    assert info.value.step == "load"
    assert "SyntaxError" in info.value.reason or "syntax" in info.value.reason.lower()
    assert info.value.node == "n1@h"
    assert shop.answer() == 1
    assert node_version() == before


def test_module_body_raising_system_exit_fails_at_load_and_changes_nothing(
    release: Release,
) -> None:
    shop = release.imp("shop")
    before = node_version()
    release.write("shop", "raise SystemExit(3)\n")
    with pytest.raises(UpgradeError) as info:
        upgrade_node()
    assert (info.value.step, info.value.reason) == ("load", "SystemExit: 3")
    assert shop.answer() == 1
    assert node_version() == before


def test_action_raising_keyboard_interrupt_reverts_and_fails_at_actions(
    release: Release,
) -> None:
    shop = release.imp("shop")
    release.write("shop", "def answer():\n    return 2\n")

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(UpgradeError) as info:
        upgrade_node(actions=[("ctrl-c", interrupted)])
    assert info.value.step == "actions"
    assert "KeyboardInterrupt" in info.value.reason
    assert shop.answer() == 1


def test_a_failure_after_the_actions_says_the_new_code_and_the_actions_stay(
    release: Release, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = release.imp("shop")
    release.write("shop", "def answer():\n    return 2\n")
    ran: list[str] = []

    def full_disk(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_job, "append_line", full_disk)
    with pytest.raises(UpgradeError) as info:
        upgrade_node(actions=[("count", lambda: ran.append("count"))])
    assert info.value.step == "record"
    assert "No space left on device" in info.value.reason
    assert "the new code is running and the upgrade actions ran" in info.value.reason
    assert shop.answer() == 2 and ran == ["count"]
    monkeypatch.undo()
    assert upgrade_node().loaded == []  # nothing left to do, and the action does not run again
    assert ran == ["count"]


def test_dangling_reference_fails_at_xref(release: Release) -> None:
    release.write("helper", "def value():\n    return 1\n")
    release.write("shop", "from PKG import helper\n\ndef answer():\n    return helper.value()\n")
    shop = release.imp("shop")
    release.write("helper", "def renamed():\n    return 1\n")
    with pytest.raises(UpgradeError) as info:
        upgrade_node()
    assert info.value.step == "xref"
    assert "value" in info.value.reason
    assert shop.answer() == 1


def test_release_mismatch_fails_before_anything_changes(release: Release) -> None:
    shop = release.imp("shop")
    release.write("shop", "def answer():\n    return 2\n")
    with pytest.raises(UpgradeError) as info:
        upgrade_node(release="v2")
    assert info.value.step == "release"
    assert "ship the files" in info.value.reason
    assert shop.answer() == 1


def test_actions_run_once_per_release(release: Release) -> None:
    release.imp("shop")
    runs: list[str] = []

    @upgrade_action("2026-11-24-count")
    def count() -> None:
        runs.append("count")

    release.write("shop", "def answer():\n    return 2\n")
    release.manifest("v2")
    assert upgrade_node(actions=[count]).actions == ["2026-11-24-count"]
    assert upgrade_node(actions=[count]).actions == []
    assert runs == ["count"]
    records = json.loads((release.state_dir / "deploy" / "actions.json").read_text())
    assert records["v2/2026-11-24-count"]["state"] == "done"
    assert reset_action("2026-11-24-count") is True
    assert upgrade_node(actions=[count]).actions == ["2026-11-24-count"]
    assert runs == ["count", "count"]


def test_the_upgrade_hands_the_gil_over_often_and_puts_the_interval_back(
    release: Release,
) -> None:
    release.imp("shop")
    seen: list[float] = []
    before = sys.getswitchinterval()
    release.write("shop", "def answer():\n    return 2\n")
    release.manifest("v2")
    upgrade_node(actions=[("2026-12-04-interval", lambda: seen.append(sys.getswitchinterval()))])
    assert seen and seen[0] <= 0.001 < before
    assert sys.getswitchinterval() == before


def test_failing_action_reverts_the_switch_and_runs_again_next_time(release: Release) -> None:
    shop = release.imp("shop")
    before = node_version()
    release.write("shop", "def answer():\n    return 2\n")
    release.manifest("v2")
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("table locked")

    with pytest.raises(UpgradeError) as info:
        upgrade_node(actions=[("2026-11-24-flaky", flaky)])
    assert info.value.step == "actions"
    assert "2026-11-24-flaky raised RuntimeError: table locked" in info.value.reason
    assert "reverted" in info.value.reason
    assert shop.answer() == 1
    assert node_version() == before
    report = upgrade_node(actions=[("2026-11-24-flaky", flaky)])
    assert report.actions == ["2026-11-24-flaky"]
    assert shop.answer() == 2


def test_release_actions_from_the_manifest_run(release: Release) -> None:
    release.imp("shop")
    release.write("migrate", "DONE = []\n\ndef run():\n    DONE.append('yes')\n")
    release.manifest(
        "v2", '[[actions]]\nid = "rel-1"\ncall = "PKG.migrate:run"\n'.replace("PKG", release.pkg)
    )
    report = upgrade_node()
    assert report.actions == ["rel-1"]
    assert release.imp("migrate").DONE == ["yes"]


def test_old_code_still_running_is_reported_then_blocks_the_next_upgrade(
    release: Release,
) -> None:
    release.write("worker", "def block(event):\n    event.wait()\n    return 'v1'\n")
    worker = release.imp("worker")
    started, gate = threading.Event(), threading.Event()

    def run() -> None:
        started.set()
        worker.block(gate)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        started.wait(5)
        release.write("worker", "def block(event):\n    event.wait()\n    return 'v2'\n")
        assert upgrade_node().lingering == [release.mod("worker")]
        release.write("worker", "def block(event):\n    event.wait()\n    return 'v3'\n")
        with pytest.raises(UpgradeError) as info:
            upgrade_node()
        assert info.value.step == "purge"
        assert release.mod("worker") in info.value.reason
    finally:
        gate.set()
        thread.join(5)
    assert upgrade_node().loaded == [release.mod("worker")]
    assert code.current_version(release.mod("worker")) is not None


def test_bad_action_argument_fails_at_actions(release: Release) -> None:
    with pytest.raises(UpgradeError) as info:
        upgrade_node(actions=[lambda: None])
    assert info.value.step == "actions"
