"""Settings in one process: share hashing, file-then-memory updates (readers not held
up by the file's fsyncs), loading."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotmesh import ConfigError, settings


@pytest.fixture
def bound(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "settings.json"
    settings.load(path, "n1@h")
    yield path
    settings._path = None
    settings._values.clear()


def test_share_point_is_stable_and_depends_on_node_and_key() -> None:
    assert settings.share_point("app1@web1", "feature.x") == settings.share_point(
        "app1@web1", "feature.x"
    )
    assert settings.share_point("app1@web1", "feature.x") != settings.share_point(
        "app2@web1", "feature.x"
    )
    assert settings.share_point("app1@web1", "feature.x") != settings.share_point(
        "app1@web1", "feature.y"
    )
    # Pinned: a change of the hash would silently move nodes in and out of shares.
    assert round(settings.share_point("app1@web1", "feature.x"), 6) == 0.456058


def test_growing_a_share_keeps_the_nodes_already_in_it() -> None:
    nodes = [f"n{i}@h" for i in range(200)]
    small = {n for n in nodes if settings.in_share(n, "k", 0.1)}
    large = {n for n in nodes if settings.in_share(n, "k", 0.5)}
    assert small <= large
    assert 5 <= len(small) <= 40
    assert 70 <= len(large) <= 130
    assert all(settings.in_share(n, "k", None) for n in nodes)
    assert not any(settings.in_share(n, "k", 0.0) for n in nodes)


def test_set_on_this_node_writes_the_file_and_the_live_value(bound: Path) -> None:
    applied = settings.set("pool.size", 32)
    assert applied.ok
    assert applied.values == {"n1@h": 32}
    assert settings.get("pool.size") == 32
    assert json.loads(bound.read_text()) == {"pool.size": 32}
    history = [
        json.loads(x) for x in bound.with_name("settings-history.jsonl").read_text().splitlines()
    ]
    assert history[-1]["key"] == "pool.size"
    assert history[-1]["by"] == "n1@h"


def test_unset_and_features(bound: Path) -> None:
    settings.set("feature.fast_path", True)
    assert settings.feature("fast_path")
    settings.unset("feature.fast_path")
    assert not settings.feature("fast_path")
    assert settings.get("feature.fast_path", "dflt") == "dflt"
    assert json.loads(bound.read_text()) == {}


def test_reload_reads_what_was_written(bound: Path) -> None:
    settings.set("limits", {"rps": 10, "burst": [1, 2]})
    settings._values.clear()
    assert settings.load(bound, "n1@h") == {"limits": {"rps": 10, "burst": [1, 2]}}
    assert settings.get("limits") == {"rps": 10, "burst": [1, 2]}


def test_values_that_cannot_be_stored_are_refused(bound: Path) -> None:
    with pytest.raises(TypeError, match="JSON"):
        settings.set("when", object())
    with pytest.raises(TypeError, match="key"):
        settings.set("", 1)
    with pytest.raises(ValueError, match="share"):
        settings.set("k", 1, share=1.5)
    assert settings.snapshot() == {}


def test_a_corrupt_settings_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        settings.load(path)
    path.write_text("{nope")
    with pytest.raises(ConfigError, match="not valid JSON"):
        settings.load(path)


def test_a_reader_is_not_held_up_while_a_change_is_written_to_disk(
    bound: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.set("pool.size", 1)
    read: list[object] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        # Another thread (a client request) reads the setting while the file is written.
        reader = threading.Thread(target=lambda: read.append(settings.get("pool.size")))
        reader.start()
        reader.join(30)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    settings.set("pool.size", 2)
    # The value before while the file is written (its fsync, its directory's), the new
    # one once it is on disk (the history line comes after).
    assert read == [1, 1, 2]
    assert settings.get("pool.size") == 2
