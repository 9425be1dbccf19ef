"""hotmesh._files: atomic replace, its failure cleanup and modes, fsynced appends."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotmesh._files import (
    append_line,
    atomic_write_json,
    atomic_write_text,
    make_temp,
    read_json,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """A umask that would grant group and other bits, so a test sees the mode is exact."""
    previous = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(previous)


def test_replaces_the_file_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f.json"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["f.json"]


@pytest.mark.usefixtures("loose_umask")
def test_the_new_file_is_owner_only_by_default(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("old")
    target.chmod(0o644)
    atomic_write_text(target, "new")
    assert _mode(target) == 0o600


@pytest.mark.usefixtures("loose_umask")
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o400])
def test_mode_is_applied_exactly(tmp_path: Path, mode: int) -> None:
    target = tmp_path / "f"
    atomic_write_json(target, {"a": 1}, mode=mode)
    assert _mode(target) == mode
    assert read_json(target, None) == {"a": 1}


def test_a_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path: Path) -> None:
    target = tmp_path / "f"
    atomic_write_text(target, "old")
    # A lone surrogate cannot be encoded as UTF-8: the write fails after the
    # temp file exists, like a full disk would.
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(target, "x" * 100_000 + "\ud800")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_a_crash_before_the_rename_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f"
    atomic_write_text(target, "old")

    def interrupted(src: str, dst: str) -> None:
        raise KeyboardInterrupt  # a BaseException, as a signal would raise mid-write

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_a_failed_rename_removes_the_temp(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()  # os.replace cannot put a file over a directory
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]
    assert list(target.iterdir()) == []


def test_unserialisable_json_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    with pytest.raises(TypeError):
        atomic_write_json(target, {"a": object()})
    assert not tmp_path.joinpath("f.json").exists()
    assert list(tmp_path.iterdir()) == []


def test_json_is_indented_sorted_and_newline_terminated(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    atomic_write_json(target, {"b": 1, "a": [1, 2]})
    assert target.read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'


def test_read_json_gives_the_default_for_a_missing_file_and_rejects_bad_json(
    tmp_path: Path,
) -> None:
    assert read_json(tmp_path / "missing.json", {"d": 1}) == {"d": 1}
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError):
        read_json(bad, {})


def test_append_line_adds_exactly_one_newline(tmp_path: Path) -> None:
    log = tmp_path / "sub" / "history.jsonl"
    append_line(log, "one")
    append_line(log, "two\n")
    assert log.read_text() == "one\ntwo\n"


def test_make_temp_creates_a_new_owner_only_file_each_time(tmp_path: Path) -> None:
    made = [make_temp(tmp_path, ".x.", ".tmp") for _ in range(3)]
    for fd, path in made:
        os.close(fd)
        assert Path(path).parent == tmp_path
        assert Path(path).name.startswith(".x.") and path.endswith(".tmp")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len({path for _, path in made}) == 3
