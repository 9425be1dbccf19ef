"""Stress of the switch: readers in tight loops while versions are loaded, reverted and purged.

Checks coherence (two modules switched together are never seen apart, even
across reverts) and reference counts of every namespace (none leaked, none
over-released). Run it also under ``-X dev`` with ``PYTHONMALLOC=debug``.
"""

from __future__ import annotations

import gc
import operator
import sys
import threading
import time
import weakref
from typing import Any

import pytest

import hotmesh.code as code
from tests.waiting import wait_until

from .conftest import Pkg

CYCLES = 160
READERS = 3

# Both values in one C call (no bytecode boundary): a thread switch cannot fall between.
_both_v = operator.attrgetter("V")


def _body(version: int) -> str:
    return (
        f"V = {version}\n"
        f"TAG = 'v{version}'\n"
        "class Token:\n    pass\n"
        "TOKEN = Token()\n"
        "def f():\n    return V, TAG\n"
    )


def _refs(namespace: dict[str, Any]) -> int:
    return sys.getrefcount(namespace) - 1  # without getrefcount's own argument


# Three spinning readers compete with the loading thread for the GIL: the time this
# takes grows much faster than the machine's load, hence the generous limit.
@pytest.mark.timeout(180)
def test_readers_see_coherent_versions_and_namespaces_are_released(pkg: Pkg) -> None:
    for name in ("a", "b", "c"):
        pkg.write(name, _body(0))
    a, b, c = pkg.imp("a"), pkg.imp("b"), pkg.imp("c")
    mods = [pkg.mod("a"), pkg.mod("b")]
    stop = threading.Event()
    problems: list[str] = []
    reads = [0] * READERS

    def read_pair(slot: int) -> None:
        while not stop.is_set():
            va, vb = map(_both_v, (a, b))
            if va != vb:
                problems.append(f"a and b seen apart: {va} != {vb}")
            value, tag = a.f()
            if tag != f"v{value}":
                problems.append(f"a.f() mixed versions: {value} {tag}")
            reads[slot] += 1
            if reads[slot] % 4 == 0:
                time.sleep(0)  # hand the GIL over now and then, so the loads progress

    def read_single(slot: int) -> None:
        while not stop.is_set():
            value, tag = c.f()
            if tag != f"v{value}" or c.TAG[0] != "v":
                problems.append(f"c.f() mixed versions: {value} {tag}")
            reads[slot] += 1
            if reads[slot] % 4 == 0:
                time.sleep(0)  # hand the GIL over now and then, so the loads progress

    targets = [read_pair, read_single, read_pair]
    threads = [
        threading.Thread(target=targets[i % len(targets)], args=(i,), daemon=True)
        for i in range(READERS)
    ]
    tokens: list[weakref.ref[Any]] = []
    previous_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    for thread in threads:
        thread.start()
    try:
        for cycle in range(1, CYCLES + 1):
            before = {m: code.current_version(m).namespace for m in mods}  # type: ignore[union-attr]
            base = {m: _refs(ns) for m, ns in before.items()}
            for name in ("a", "b"):
                pkg.write(name, _body(cycle))
            code.atomic_load(mods)
            new = {m: code.current_version(m).namespace for m in mods}  # type: ignore[union-attr]
            new_base = {m: _refs(ns) for m, ns in new.items()}
            # The facade's reference moved from the previous namespace to the new one.
            assert {m: _refs(ns) for m, ns in before.items()} == {m: n - 1 for m, n in base.items()}
            if cycle % 3 == 0:
                code.revert(mods)  # back to the previous versions, the new ones old
                assert {m: _refs(ns) for m, ns in before.items()} == base
                dropped, kept = new, before
                drop_base = {m: n - 1 for m, n in new_base.items()}
                pkg.write("a", _body(cycle - 1))  # keep the disk in step with memory
                pkg.write("b", _body(cycle - 1))
            else:
                dropped, kept = before, new
                drop_base = {m: n - 1 for m, n in base.items()}
            for m in mods:
                wait_until(lambda m=m: code.soft_purge(m), timeout=5, message=f"purge {m}")
            # Purging dropped exactly the version's own reference, nothing more.
            assert {m: _refs(ns) for m, ns in dropped.items()} == {
                m: n - 1 for m, n in drop_base.items()
            }
            assert all(code.current_version(m).namespace is kept[m] for m in mods)  # type: ignore[union-attr]
            tokens += [weakref.ref(ns["TOKEN"]) for ns in dropped.values()]
            del before, new, dropped, kept
            pkg.write("c", _body(cycle))
            code.load_file(pkg.mod("c"))
            wait_until(lambda: code.soft_purge(pkg.mod("c")), timeout=5, message="purge c")
            gc.collect(0 if cycle % 10 else 2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        sys.setswitchinterval(previous_interval)
    gc.collect()
    assert problems == []
    assert all(reads), reads
    assert [ref for ref in tokens if ref() is not None] == []  # purged namespaces were freed
    assert a.V == b.V and a.f() == (a.V, f"v{a.V}") and c.f() == (CYCLES, f"v{CYCLES}")


def test_purge_releases_the_old_version_without_waiting_for_the_collector(pkg: Pkg) -> None:
    pkg.write("a", _body(0))
    pkg.imp("a")
    namespace = code.current_version(pkg.mod("a")).namespace  # type: ignore[union-attr]
    pkg.write("a", _body(1))
    gc.disable()  # the scan's frames once formed a cycle that only a collection broke
    try:
        code.load_file(pkg.mod("a"))
        old = _refs(namespace)
        assert code.check_process_code(threading.current_thread(), pkg.mod("a")) is False
        assert code.soft_purge(pkg.mod("a"))
        assert _refs(namespace) == old - 1  # only the version's own reference went
    finally:
        gc.enable()
