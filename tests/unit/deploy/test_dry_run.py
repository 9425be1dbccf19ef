"""upgrade_node(dry_run=True): what the upgrade would do, with nothing changed."""

from __future__ import annotations

import hashlib
import sys
import threading
from typing import Any

import hotmesh.code as code
from hotmesh import settings
from hotmesh.deploy import node_version, upgrade_node
from tests.unit.deploy.conftest import Release

ACTION = '[[actions]]\nid = "rel-1"\ncall = "PKG.migrate:run"\n'


def snapshot(release: Release) -> dict[str, Any]:
    """Everything a dry run must leave alone: code, modules, version, files, settings."""
    files = {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for root in (release.root,)
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }
    return {
        "version": node_version(),
        "code": {m: (c.hash, o.hash if o else None) for m, (c, o) in code.all_versions().items()},
        "modules": sorted(m for m in sys.modules if m.startswith(release.pkg)),
        "files": files,
        "settings": settings.snapshot(),
    }


def test_dry_run_shows_the_upgrade_and_changes_nothing(release: Release) -> None:
    release.imp("shop")
    old_hash = code.current_version(release.mod("shop")).hash  # type: ignore[union-attr]
    release.write("helper", "def value():\n    return 42\n")
    release.write("shop", "from PKG import helper\n\ndef answer():\n    return helper.value()\n")
    release.write(
        "migrate",
        "def run():\n    from hotmesh import settings\n    settings.set('dry.limit', 9)\n",
    )
    release.manifest("v2", ACTION.replace("PKG", release.pkg))
    before = snapshot(release)

    plan = upgrade_node(dry_run=True)

    assert snapshot(release) == before
    assert plan.ok and plan.release == "v2" and plan.old_version == before["version"]
    changes = {m["module"]: m for m in plan.modules}
    shop = changes[release.mod("shop")]
    assert shop["change"] == "modified" and shop["old_hash"] == old_hash
    assert shop["new_hash"] != old_hash
    assert "-    return 1\n" in shop["diff"] and "+    return helper.value()\n" in shop["diff"]
    assert changes[release.mod("helper")]["change"] == "new"
    assert plan.actions == ["rel-1"] and plan.xref == []
    # What the real upgrade then does is what the dry run said.
    report = upgrade_node()
    assert sorted(report.loaded) == sorted(changes)
    assert report.actions == plan.actions
    assert settings.get("dry.limit") == 9


def test_dry_run_names_the_failing_step_and_code_that_would_become_old(
    release: Release,
) -> None:
    release.write("helper", "def value():\n    return 1\n")
    release.write(
        "shop",
        "import threading\nfrom PKG import helper\nSTARTED = threading.Event()\n"
        "GO = threading.Event()\n\ndef wait():\n    STARTED.set()\n    GO.wait(30)\n"
        "    return helper.value()\n",
    )
    shop = release.imp("shop")
    waiter = threading.Thread(target=shop.wait, name="order-worker", daemon=True)
    waiter.start()
    try:
        assert shop.STARTED.wait(5)
        release.write("helper", "def renamed():\n    return 1\n")
        before = snapshot(release)
        plan = upgrade_node(dry_run=True)
        assert snapshot(release) == before
        assert not plan.ok and plan.step == "xref" and "value" in plan.reason
        assert plan.running == {}  # the thread is in shop, which does not change
        assert "would FAIL at xref" in repr(plan)
        release.write("helper", "def value():\n    return 2\n")
        release.write("shop", "def wait():\n    return 0\n")
        plan = upgrade_node(dry_run=True)
        assert plan.ok
        [where] = plan.running[release.mod("shop")]
        assert list(plan.running) == [release.mod("shop")] and "'order-worker'" in where
    finally:
        shop.GO.set()
        waiter.join(5)


def test_dry_run_lists_the_dependents_the_upgrade_re_runs(release: Release) -> None:
    release.write("core", "def make():\n    return 1\n")
    release.write("api", "from PKG.core import make\n")
    release.imp("api")
    release.write("core", "def make():\n    return 2\n")
    plan = upgrade_node(dry_run=True)
    assert plan.ok
    assert [d.split(" ")[0] for d in plan.dependents] == [release.mod("api")]
    assert [m["module"] for m in plan.modules] == [release.mod("core")]
    report = upgrade_node()
    assert sorted(report.loaded) == sorted([release.mod("api"), release.mod("core")])


def test_dry_run_names_asyncio_tasks_in_code_that_would_become_old(release: Release) -> None:
    import asyncio

    release.write("poll", "import asyncio\n\nasync def poll(stop):\n    await stop.wait()\n")
    poll = release.imp("poll")
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    try:
        stop = asyncio.run_coroutine_threadsafe(_event(), loop).result(5)
        task = asyncio.run_coroutine_threadsafe(_spawn(poll.poll(stop), "poller"), loop).result(5)
        release.write("poll", "import asyncio\n\nasync def poll(stop):\n    return None\n")
        plan = upgrade_node(dry_run=True)
        [where] = plan.running[release.mod("poll")]
        assert where.startswith("task 'poller'")
        loop.call_soon_threadsafe(stop.set)
        asyncio.run_coroutine_threadsafe(asyncio.wait_for(task, 5), loop).result(5)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(5)
        loop.close()


async def _event() -> Any:
    import asyncio

    return asyncio.Event()


async def _spawn(coro: Any, name: str) -> Any:
    import asyncio

    return asyncio.get_running_loop().create_task(coro, name=name)


def test_dry_run_says_the_purge_would_fail_while_old_code_runs(release: Release) -> None:
    release.write(
        "worker",
        "import threading\nIN = threading.Event()\n\n"
        "def block(gate):\n    IN.set()\n    gate.wait()\n",
    )
    worker = release.imp("worker")
    gate = threading.Event()
    thread = threading.Thread(target=worker.block, args=(gate,), name="old-worker")
    thread.start()
    try:
        assert worker.IN.wait(5)
        release.write(
            "worker", "import threading\nIN = threading.Event()\n\ndef block(gate):\n    return 2\n"
        )
        assert upgrade_node().lingering == [release.mod("worker")]
        release.write(
            "worker", "import threading\nIN = threading.Event()\n\ndef block(gate):\n    return 3\n"
        )
        before = snapshot(release)
        plan = upgrade_node(dry_run=True)
        assert snapshot(release) == before
        assert not plan.ok and plan.step == "purge" and release.mod("worker") in plan.reason
        [where] = plan.purge[release.mod("worker")]["running"]
        assert "'old-worker'" in where
    finally:
        gate.set()
        thread.join(5)


SETTINGS_ACTIONS = """
[[actions]]
id = "rel-limits"
settings = { "dry.pool" = 32, "dry.mode" = "fast" }

[[actions]]
id = "rel-code"
call = "PKG.migrate:run"
"""


def test_dry_run_shows_the_settings_the_actions_would_change(release: Release) -> None:
    release.write("migrate", "def run():\n    return None\n")
    release.manifest("v2", SETTINGS_ACTIONS.replace("PKG", release.pkg))
    settings.apply_local("dry.pool", True, 8, "test")
    given = [("given-same", {"dry.other": 1}), ("given-unchanged", {"dry.pool": 8})]
    try:
        before = snapshot(release)
        plan = upgrade_node(actions=given, dry_run=True)
        assert snapshot(release) == before
        assert plan.ok and plan.actions == [
            "given-same",
            "given-unchanged",
            "rel-limits",
            "rel-code",
        ]
        # In the order the actions run: a value an earlier action sets is the next one's old.
        assert plan.settings == [
            {"action": "given-same", "key": "dry.other", "old": None, "new": 1, "was_set": False},
            {"action": "rel-limits", "key": "dry.pool", "old": 8, "new": 32, "was_set": True},
            {
                "action": "rel-limits",
                "key": "dry.mode",
                "old": None,
                "new": "fast",
                "was_set": False,
            },
        ]
        assert plan.opaque == ["rel-code"]
        shown = repr(plan)
        assert "set dry.other, dry.pool, dry.mode" in plan.summary()
        assert "setting  dry.pool: 8 -> 32 (by rel-limits)" in shown
        assert "setting  dry.mode: <unset> -> 'fast' (by rel-limits)" in shown
        assert "action   rel-code (calls a function: effects not shown)" in shown
        # The upgrade then does what the dry run showed, and a second dry run finds nothing.
        report = upgrade_node(actions=given)
        assert report.actions == plan.actions
        assert [settings.get(k) for k in ("dry.other", "dry.pool", "dry.mode")] == [1, 32, "fast"]
        again = upgrade_node(actions=given, dry_run=True)
        assert again.ok and again.actions == [] and again.settings == []
    finally:
        for key in ("dry.other", "dry.pool", "dry.mode"):
            settings.apply_local(key, False, None, "test")


def test_an_action_given_and_declared_by_the_release_runs_once_as_given(
    release: Release,
) -> None:
    release.manifest("v2", SETTINGS_ACTIONS.replace("PKG", release.pkg))
    release.write("migrate", "RAN = []\n\ndef run():\n    RAN.append(1)\n")
    try:
        plan = upgrade_node(actions=[("rel-limits", {"dry.pool": 16})], dry_run=True)
        assert plan.actions == ["rel-limits", "rel-code"]
        assert [(c["key"], c["new"]) for c in plan.settings] == [("dry.pool", 16)]
        report = upgrade_node(actions=[("rel-limits", {"dry.pool": 16})])
        assert report.actions == ["rel-limits", "rel-code"]
        assert settings.get("dry.pool") == 16 and settings.get("dry.mode") is None
        assert release.imp("migrate").RAN == [1]
    finally:
        settings.apply_local("dry.pool", False, None, "test")
