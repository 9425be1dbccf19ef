"""Provisional upgrades in one process: revert on time or on a failed check,
confirmation, and coming back on the previous release after a restart."""

from __future__ import annotations

import json

import pytest

import hotmesh.code as code
from hotmesh import DeployError, UpgradeError
from hotmesh.deploy import (
    confirm,
    node_version,
    register_health_check,
    unregister_health_check,
    upgrade_node,
)
from hotmesh.deploy.release import release_of
from tests.unit.deploy.conftest import Release
from tests.waiting import wait_until


def _record(release: Release) -> dict:
    return json.loads((release.state_dir / "deploy" / "provisional.json").read_text())


def _to_v2(release: Release) -> None:
    release.write("shop", "def answer():\n    return 2\n")
    release.manifest("v2")


def test_unconfirmed_upgrade_switches_back_on_its_own(release: Release) -> None:
    shop = release.imp("shop")
    before = node_version()
    _to_v2(release)
    report = upgrade_node(provisional=0.3)
    assert report.provisional == 0.3
    assert shop.answer() == 2
    assert code.old_version(release.mod("shop")) is not None  # kept for the revert
    wait_until(lambda: shop.answer() == 1, timeout=5, message="airbag revert")
    assert node_version() == before
    record = _record(release)
    assert record["state"] == "reverted"
    assert "not confirmed within 0.3 s" in record["reason"]
    with pytest.raises(DeployError, match="too late"):
        confirm()


def test_confirmed_upgrade_stays_and_drops_the_old_code(release: Release) -> None:
    shop = release.imp("shop")
    _to_v2(release)
    upgrade_node(provisional=30)
    with pytest.raises(UpgradeError) as info:
        upgrade_node()
    assert info.value.step == "provisional"
    status = confirm()
    assert status.startswith("confirmed v2+")
    assert _record(release)["state"] == "confirmed"
    assert code.old_version(release.mod("shop")) is None
    assert shop.answer() == 2
    assert confirm().startswith("nothing to confirm")


def test_failed_health_check_reverts_at_once(release: Release) -> None:
    shop = release.imp("shop")
    healthy = {"ok": True}
    name = register_health_check(lambda: healthy["ok"], name="db")
    try:
        _to_v2(release)
        upgrade_node(provisional=30)
        assert shop.answer() == 2
        healthy["ok"] = False
        wait_until(lambda: shop.answer() == 1, timeout=10, message="revert on failed check")
        assert _record(release)["reason"] == "health check failed: db returned False"
    finally:
        assert unregister_health_check(name)


def test_new_module_of_a_reverted_upgrade_is_unloaded(release: Release) -> None:
    shop = release.imp("shop")
    release.write("extra", "X = 1\n")
    release.write("shop", "from PKG import extra\n\ndef answer():\n    return extra.X + 1\n")
    report = upgrade_node(provisional=0.2)
    assert release.mod("extra") in report.loaded
    wait_until(lambda: shop.answer() == 1, timeout=5, message="airbag revert")
    assert not code.is_loaded(release.mod("extra"))


def test_restart_while_unconfirmed_restores_the_previous_sources(release: Release) -> None:
    release.imp("shop")
    _to_v2(release)
    release.write("extra", "X = 1\n")
    upgrade_node(provisional=30)
    release.halt()  # the process dies before confirm()
    release.boot()
    assert release.imp("shop").answer() == 1
    assert release_of(node_version()) == "v1"
    assert not (release.dir / release.pkg / "extra.py").exists()
    rejected = release.state_dir / "deploy" / "rejected" / "v2"
    assert "return 2" in (rejected / f"{release.mod('shop')}.py").read_text()
    assert (rejected / "hotmesh-release.toml").exists()
    assert _record(release)["state"] == "reverted"
    assert "restarted before" in _record(release)["reason"]


def test_restart_after_confirm_keeps_the_new_release(release: Release) -> None:
    release.imp("shop")
    _to_v2(release)
    upgrade_node(provisional=30)
    confirm()
    release.halt()
    release.boot()
    assert release.imp("shop").answer() == 2
    assert release_of(node_version()) == "v2"


def test_symlink_layout_restart_points_back_at_the_previous_release(linked: Release) -> None:
    shop = linked.imp("shop")
    v1_dir = linked.dir
    linked.switch_to("v2")
    linked.write("shop", "def answer():\n    return 2\n")
    report = upgrade_node(provisional=30)
    assert release_of(report.new_version) == "v2"
    assert shop.answer() == 2
    linked.halt()
    linked.boot()
    assert linked.link.resolve() == v1_dir.resolve()
    assert linked.imp("shop").answer() == 1
    assert release_of(node_version()) == "v1"


def test_bad_window_is_refused_before_anything_changes(release: Release) -> None:
    shop = release.imp("shop")
    _to_v2(release)
    with pytest.raises(UpgradeError) as info:
        upgrade_node(provisional=-1)
    assert info.value.step == "provisional"
    assert shop.answer() == 1


def test_a_second_provisional_upgrade_is_watched_too(release: Release) -> None:
    shop = release.imp("shop")
    _to_v2(release)
    upgrade_node(provisional=30)
    confirm()
    release.write("shop", "def answer():\n    return 3\n")
    release.manifest("v3")
    upgrade_node(provisional=0.2)
    assert shop.answer() == 3
    wait_until(lambda: shop.answer() == 2, timeout=5, message="second revert")
    assert release_of(node_version()) == "v2"


def test_confirm_after_a_revert_and_a_later_upgrade_has_nothing_to_confirm(
    release: Release,
) -> None:
    shop = release.imp("shop")
    _to_v2(release)
    upgrade_node(provisional=0.1)
    wait_until(lambda: shop.answer() == 1, timeout=5, message="airbag revert")
    upgrade_node()
    assert shop.answer() == 2
    assert confirm().startswith("nothing to confirm")
