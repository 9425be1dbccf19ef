"""Readers never see half of a multi-module switch; readers take no lock."""

from __future__ import annotations

import sys
import threading

import hotmesh.code as code

from .conftest import Pkg


def test_atomic_load_of_two_modules_is_never_seen_half_applied(pkg: Pkg) -> None:
    pkg.write("a", "V = 0\n")
    pkg.write("b", "V = 0\n")
    a, b = pkg.imp("a"), pkg.imp("b")
    stop = threading.Event()
    torn: list[tuple[int, int]] = []
    reads = [0]

    def reader() -> None:
        while not stop.is_set():
            # a is read first: after an atomic switch b can only be as new or newer.
            va = a.V
            vb = b.V
            reads[0] += 1
            if va > vb:
                torn.append((va, vb))

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(1, 31):
            pkg.write("a", f"V = {i}\n")
            pkg.write("b", f"V = {i}\n")
            code.soft_purge(pkg.mod("a"))
            code.soft_purge(pkg.mod("b"))
            code.atomic_load([pkg.mod("a"), pkg.mod("b")])
    finally:
        stop.set()
        thread.join(5)
        sys.setswitchinterval(previous)
    assert torn == []
    assert reads[0] > 0
    assert a.V == b.V == 30


def test_check_process_code_is_false_for_thread_running_current_code(pkg: Pkg) -> None:
    waiter = (
        "import threading\nIN = threading.Event()\ndef wait(ev):\n    IN.set()\n    ev.wait()\n"
    )
    pkg.write("a", waiter)
    a = pkg.imp("a")
    pkg.write("a", waiter + "V = 2\n")
    code.load_file(pkg.mod("a"))
    release = threading.Event()
    thread = threading.Thread(target=a.wait, args=(release,))
    thread.start()
    try:
        assert a.IN.wait(5)
        assert not code.check_process_code(thread, pkg.mod("a"))
        assert code.soft_purge(pkg.mod("a"))
    finally:
        release.set()
        thread.join(5)


def test_keep_outside_the_code_server_survives_importlib_reload(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import importlib

    (tmp_path / "hm_plain_keep.py").write_text(
        "import hotmesh.code\nSTATE = hotmesh.code.keep('S', list)\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        mod = importlib.import_module("hm_plain_keep")
        mod.STATE.append(1)
        importlib.reload(mod)
        assert mod.STATE == [1]
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("hm_plain_keep", None)
