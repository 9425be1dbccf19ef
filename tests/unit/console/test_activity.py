"""ps() and where(): threads and tasks, the function each is in and its module's version."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import hotmesh.code as code
from hotmesh._console.activity import activities, stack_of
from tests.waiting import wait_until

WORKER = """
import threading
GATE = threading.Event()

def serve():
    GATE.wait()
"""


@pytest.fixture
def managed(tmp_path: Path) -> Iterator[Path]:
    """A managed package ``hmps_<n>`` on sys.path with module ``worker``; forgotten after."""
    name = f"hmps_{tmp_path.name[-6:].replace('-', '_')}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / "worker.py").write_text(WORKER)
    sys.path.insert(0, str(tmp_path))
    code.add_root(name)
    try:
        yield tmp_path / name
    finally:
        code._reset()
        sys.path.remove(str(tmp_path))
        for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[mod]
        importlib.invalidate_caches()


def test_ps_names_the_managed_function_each_thread_is_in_and_its_version(managed: Path) -> None:
    module = f"{managed.name}.worker"
    worker = importlib.import_module(module)
    thread = threading.Thread(target=worker.serve, name="svc-serve", daemon=True)
    thread.start()
    try:
        rows = wait_until(lambda: [r for r in activities() if r.name == "svc-serve"], timeout=5)
        first = code.current_version(module)
        assert first is not None
        assert (rows[0].kind, rows[0].function, rows[0].version) == (
            "thread",
            f"{module}.serve",
            first.vsn,
        )
        # A new version loaded while the thread still runs the old one.
        (managed / "worker.py").write_text(WORKER + "\nNEW = 1\n")
        code.load_file(module)
        row = next(r for r in activities() if r.name == "svc-serve")
        assert row.version == f"old {first.vsn}"
        assert "GATE.wait()" in stack_of("svc-serve") and "GATE.wait()" in stack_of(row)
        assert "svc-serve" in repr(activities())  # the table the console shows
    finally:
        worker.GATE.set()
        first_gate = code.old_version(module)
        if first_gate is not None:
            first_gate.namespace["GATE"].set()
        thread.join(5)


def test_ps_lists_asyncio_tasks_of_every_loop_and_where_shows_one() -> None:
    loop = asyncio.new_event_loop()
    started = threading.Event()

    async def waiting_job() -> None:
        started.set()
        await asyncio.sleep(30)

    def run() -> None:
        asyncio.set_event_loop(loop)
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(waiting_job())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        started.wait(5)
        rows = [r for r in activities() if r.kind == "task" and "waiting_job" in r.function]
        assert rows and "await asyncio.sleep(30)" in stack_of(rows[0])
    finally:
        for task in asyncio.all_tasks(loop):
            loop.call_soon_threadsafe(task.cancel)
        thread.join(5)
        loop.close()


def test_where_of_nothing_says_so() -> None:
    with pytest.raises(LookupError, match="ps"):
        stack_of("no-such-thread-here")
