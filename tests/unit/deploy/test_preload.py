"""hotmesh.deploy._preload: the code server's parts load once a node has settled,
in a turn, on a thread of its own that stop() ends; load_parts loads them all."""

from __future__ import annotations

import sys
import threading

from hotmesh.code import server
from hotmesh.deploy import _preload


def preload_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "hotmesh-preload"]


def test_the_parts_load_after_the_settling_ticks_and_the_thread_ends() -> None:
    loaded = threading.Event()
    stop = _preload.start(0.0, load=loaded.set)
    assert loaded.wait(10)
    stop()
    assert preload_threads() == []


def test_a_stop_before_the_node_settled_skips_the_load_and_ends_the_thread() -> None:
    loaded = threading.Event()
    stop = _preload.start(3600.0, load=loaded.set)
    stop()
    assert not loaded.is_set()
    assert preload_threads() == []


def test_a_failing_load_is_left_to_the_first_upgrade() -> None:
    done = threading.Event()

    def load() -> None:
        done.set()
        raise ImportError("no such part")

    stop = _preload.start(0.0, load=load)
    assert done.wait(10)
    stop()
    assert preload_threads() == []


def test_load_parts_imports_every_part_and_the_switch_functions() -> None:
    server.load_parts()
    assert all(name in sys.modules for name in server.PARTS)
    from hotmesh.code import facade

    assert facade._decref is not None
