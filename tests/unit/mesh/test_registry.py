"""The per-host registry: register, lookup, NameInUse, and stale entries of dead processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotmesh import ConfigError, NameInUse
from hotmesh._mesh import registry
from hotmesh._mesh.registry import Entry, entries, lookup, register, unregister
from hotmesh._paths import registry_dir, short_hostname
from tests.waiting import wait_until

HOST = short_hostname()


@pytest.fixture
def live_child() -> Iterator[subprocess.Popen[bytes]]:
    """A process of ours that stays alive until the test ends."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        yield proc
    finally:
        proc.kill()
        proc.communicate()  # reaps it and closes its stdin pipe


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_register_then_lookup_by_bare_and_full_name(tmp_path: Path) -> None:
    entry = register("alpha", "tcp://127.0.0.1:5000", state_dir=tmp_path)
    assert entry == Entry(
        name=f"alpha@{HOST}",
        endpoint="tcp://127.0.0.1:5000",
        pid=os.getpid(),
        started_at=entry.started_at,
        state_dir=str(tmp_path),
    )
    assert lookup("alpha") == entry
    assert lookup(f"alpha@{HOST}") == entry
    assert lookup("beta") is None
    assert entries() == [entry]


def test_bare_name_finds_the_only_entry_under_another_host() -> None:
    entry = register("gamma@otherhost", "tcp://127.0.0.1:5001")
    assert lookup("gamma") == entry
    register("gamma@thirdhost", "tcp://127.0.0.1:5002")
    assert lookup("gamma") is None  # ambiguous
    assert lookup("gamma@thirdhost") is not None


def test_entry_file_is_json_written_without_leftovers() -> None:
    register("alpha", "tcp://127.0.0.1:5000")
    files = sorted(p.name for p in registry_dir().iterdir())
    assert files == [".lock", f"alpha@{HOST}.json"]
    record = json.loads((registry_dir() / f"alpha@{HOST}.json").read_text())
    assert record["endpoint"] == "tcp://127.0.0.1:5000" and record["pid"] == os.getpid()


def test_registering_again_from_the_same_process_replaces_the_entry() -> None:
    register("alpha", "tcp://127.0.0.1:5000")
    again = register("alpha", "tcp://127.0.0.1:6000")
    assert lookup("alpha") == again


def test_name_held_by_a_live_process_is_refused(live_child: subprocess.Popen[bytes]) -> None:
    register("alpha", "tcp://127.0.0.1:5000", pid=live_child.pid)
    with pytest.raises(NameInUse, match=rf"alpha@{HOST} is already used .* {live_child.pid}"):
        register("alpha", "tcp://127.0.0.1:6000")
    assert lookup("alpha").pid == live_child.pid  # type: ignore[union-attr]


def test_entry_of_an_exited_process_is_ignored_and_removed() -> None:
    script = (
        "from hotmesh._mesh.registry import register\nregister('ghost', 'tcp://127.0.0.1:5003')\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=20)
    path = registry_dir() / f"ghost@{HOST}.json"
    assert path.exists()
    assert lookup("ghost") is None
    assert not path.exists()


def test_stale_entry_is_replaced_by_a_new_registration() -> None:
    register("alpha", "tcp://127.0.0.1:5000", pid=_dead_pid())
    entry = register("alpha", "tcp://127.0.0.1:6000")
    assert lookup("alpha") == entry


def test_entries_lists_live_nodes_sorted_and_cleans_stale_ones(
    live_child: subprocess.Popen[bytes],
) -> None:
    register("b", "tcp://127.0.0.1:5001")
    register("a", "tcp://127.0.0.1:5000", pid=live_child.pid)
    register("c", "tcp://127.0.0.1:5002", pid=_dead_pid())
    assert [e.name for e in entries()] == [f"a@{HOST}", f"b@{HOST}"]
    assert not (registry_dir() / f"c@{HOST}.json").exists()


def test_a_reused_pid_is_not_taken_for_the_node(live_child: subprocess.Popen[bytes]) -> None:
    register("alpha", "tcp://127.0.0.1:5000", pid=live_child.pid)
    path = registry_dir() / f"alpha@{HOST}.json"
    record = json.loads(path.read_text())
    if record["pid_start"] is None:
        pytest.skip("no /proc: process start times are not recorded here")
    record["pid_start"] = "1"  # as if the node died and its pid went to this process
    path.write_text(json.dumps(record))
    assert lookup("alpha") is None


def test_unregister_removes_only_our_own_entry_when_pid_given(
    live_child: subprocess.Popen[bytes],
) -> None:
    register("alpha", "tcp://127.0.0.1:5000", pid=live_child.pid)
    unregister("alpha", pid=os.getpid())
    assert lookup("alpha") is not None
    unregister("alpha", pid=live_child.pid)
    assert lookup("alpha") is None
    unregister("alpha")  # absent: nothing happens


def test_unregister_without_pid_removes_the_entry() -> None:
    register("alpha", "tcp://127.0.0.1:5000")
    unregister(f"alpha@{HOST}")
    assert entries() == []


def test_lookup_with_no_registry_dir_finds_nothing() -> None:
    assert not registry_dir().exists()
    assert lookup("alpha") is None
    assert entries() == []


@pytest.mark.parametrize("name", ["a b", "a/b", "../x", "a@b@c", "", "*"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="bad node name"):
        register(name, "tcp://127.0.0.1:5000")


def test_corrupt_entry_file_is_skipped() -> None:
    registry_dir().mkdir(parents=True)
    (registry_dir() / f"junk@{HOST}.json").write_text("{not json")
    assert lookup("junk") is None
    assert entries() == []


def test_is_alive_answers_for_live_dead_and_bad_pids() -> None:
    assert registry.is_alive(os.getpid())
    assert not registry.is_alive(_dead_pid())
    assert not registry.is_alive(0)


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="zombies are read from /proc")
def test_a_dead_process_not_yet_reaped_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        # Exited, and not reaped (no wait yet): a zombie, which kill(pid, 0) finds.
        stat = Path(f"/proc/{child.pid}/stat")
        wait_until(lambda: stat.read_text().rpartition(")")[2].split()[0] == "Z", timeout=10)
        os.kill(child.pid, 0)
        assert not registry.is_alive(child.pid)
    finally:
        child.wait()
