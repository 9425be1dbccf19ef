"""The demo in one process: release sources, protocol, and a live v1 -> v2 upgrade under traffic."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotmesh import code
from hotmesh.demo import app
from hotmesh.demo.protocol import incr, parse_reply
from hotmesh.demo.sources import install_release, release_source
from hotmesh.demo.traffic import Traffic
from hotmesh.deploy.release import read_manifest
from hotmesh.service import migrate, service_status
from tests.waiting import wait_until


def test_releases_ship_manifests_the_deploy_toolkit_reads() -> None:
    for version in ("v1", "v2"):
        manifest = read_manifest(release_source(version))
        assert (manifest.version, manifest.packages) == (version, ("demokv",))


def test_unknown_release_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"shipped: v1, v1\.1, v2"):
        release_source("v9")


def test_release_sources_are_not_importable_from_hotmesh() -> None:
    # The directory names hold a '-', so no dotted path reaches them.
    assert all("-" in p.name for p in release_source("v1").parent.iterdir() if p.is_dir())


def test_install_release_replaces_sources_and_manifest(tmp_path: Path) -> None:
    install_release("v1", tmp_path)
    assert read_manifest(tmp_path).version == "v1"
    install_release("v2", tmp_path)
    assert read_manifest(tmp_path).version == "v2"
    assert "v2 ok count=" in (tmp_path / "demokv" / "server.py").read_text()


def test_protocol_parses_both_reply_formats_and_errors() -> None:
    assert incr(3, "k") == "3 INCR k"
    assert parse_reply("3 v1 ok 12").count == 12
    v2 = parse_reply("4 v2 ok count=13 conn=7")
    assert (v2.rid, v2.fmt, v2.count) == (4, "v2", 13)
    assert parse_reply("5 ERR ServiceCrashed: boom").fmt == "ERR"
    with pytest.raises(ValueError):
        parse_reply("garbage")


@pytest.fixture
def demo_release(tmp_path: Path) -> Iterator[Path]:
    """Release v1 of demokv installed in a managed root, the demo app started on it."""
    release = tmp_path / "release"
    install_release("v1", release)
    sys.path.insert(0, str(release))
    code.add_root(str(release))
    importlib.invalidate_caches()
    try:
        app.start(None, port=0)
        yield release
    finally:
        app.stop()
        sys.path.remove(str(release))


def test_live_upgrade_under_traffic_drops_nothing_and_carries_state(demo_release: Path) -> None:
    traffic = Traffic([("127.0.0.1", app.port())], per_endpoint=4, interval=0.001).start()
    wait_until(lambda: traffic.snapshot().replies >= 40, timeout=10, message="v1 replies")
    install_release("v2", demo_release)
    assert "demokv.server" in code.modified_modules()
    code.atomic_load(code.modified_modules())
    assert all(m.ok for m in migrate(["demokv.server"]))
    wait_until(lambda: traffic.snapshot().formats["v2"] >= 40, timeout=10, message="v2 replies")
    report = traffic.stop()
    assert report.ok, report.problems[:5]
    assert report.formats["v1"] > 0
    assert report.formats["v2"] > 0
    wait_until(lambda: app.connections() == 0, timeout=5, message="connections closed")
    assert service_status(app.SERVICE).restarts == 0
