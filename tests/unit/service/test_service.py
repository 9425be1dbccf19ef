"""Services on managed modules: code moves between messages, state migrates, crashes restart."""

from __future__ import annotations

import asyncio
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from hotmesh import code
from hotmesh._errors import CallTimeout, NoSuchService, ServiceCrashed, ServiceError
from hotmesh.service import (
    get_state,
    migrate,
    replace_state,
    resume,
    service_call,
    service_call_async,
    service_cast,
    service_info,
    service_status,
    services,
    start_service,
    stop_service,
    suspend,
)
from tests.unit.service.conftest import Callbacks
from tests.waiting import wait_until

Make = Callable[[str], Callbacks]

V1 = """
    __vsn__ = "1"

    def init(start):
        return start

    def handle_call(msg, state):
        if msg == "boom":
            raise ZeroDivisionError("boom on purpose")
        if msg == "get":
            return ("v1", state), state
        return ("v1", state + msg), state + msg

    def handle_cast(msg, state):
        return state + msg

    def terminate(reason, state):
        TERMINATED.append((reason, state))

    TERMINATED = []
"""

# v2 keeps the count in a dict and counts its own code_change runs.
V2 = """
    __vsn__ = "2"

    def init(start):
        return {"count": start, "changes": 0}

    def handle_call(msg, state):
        if msg == "get":
            return ("v2", state), state
        state = {**state, "count": state["count"] + msg}
        return ("v2", state), state

    def handle_cast(msg, state):
        return {**state, "count": state["count"] + msg}

    def code_change(old_vsn, state):
        if isinstance(old_vsn, tuple) and old_vsn[0] == "down":
            return state["count"]
        return {"count": state, "changes": 1, "from": old_vsn}
"""

V2_BROKEN_CHANGE = """
    __vsn__ = "2"

    def init(start):
        return {"count": start}

    def handle_call(msg, state):
        return ("v2", state), state

    def code_change(old_vsn, state):
        raise KeyError("no migration for this state")
"""


def _name() -> str:
    return f"svc-{uuid.uuid4().hex[:8]}"


def test_next_message_after_load_runs_new_code_and_code_change_carries_state(
    managed: Make,
) -> None:
    mod = managed(V1)
    name = _name()
    start_service(name, mod.name, 10)
    assert service_call(name, 5) == ("v1", 15)
    v2 = mod.load(V2)
    assert service_call(name, 1) == ("v2", {"count": 16, "changes": 1, "from": "1"})
    assert service_call(name, 1) == ("v2", {"count": 17, "changes": 1, "from": "1"})
    status = service_status(name)
    assert status.vsn == v2.vsn
    assert not status.pinned
    assert status.last_migration is not None
    assert status.last_migration.ok


def test_migrate_runs_code_change_now_and_old_code_can_be_soft_purged(managed: Make) -> None:
    mod = managed(V1)
    name = _name()
    start_service(name, mod.name, 3)
    v1 = code.current_version(mod.name)
    assert v1 is not None
    v2 = mod.load(V2)
    [migration] = migrate([mod.name])
    assert (migration.service, migration.from_vsn, migration.to_vsn, migration.ok) == (
        name,
        v1.vsn,
        v2.vsn,
        True,
    )
    assert get_state(name) == {"count": 3, "changes": 1, "from": "1"}
    assert code.check_old_code(mod.name)
    assert code.soft_purge(mod.name)
    assert not code.check_old_code(mod.name)


def test_migrate_reports_a_change_already_made_between_messages(managed: Make) -> None:
    mod = managed(V1)
    name = _name()
    start_service(name, mod.name, 0)
    mod.load(V2)
    service_call(name, 1)
    [migration] = migrate([mod.name])
    assert migration.ok
    assert get_state(name)["changes"] == 1


def test_migrate_leaves_out_services_of_other_modules_and_unchanged_ones(managed: Make) -> None:
    mod = managed(V1)
    start_service(_name(), mod.name, 0)
    assert migrate([mod.name]) == []
    assert migrate(["no.such.module"]) == []


def test_failing_code_change_keeps_old_code_and_state_and_is_reported(managed: Make) -> None:
    mod = managed(V1)
    name = _name()
    start_service(name, mod.name, 7)
    mod.load(V2_BROKEN_CHANGE)
    [migration] = migrate([mod.name])
    assert not migration.ok
    assert migration.error is not None
    assert "no migration for this state" in migration.error
    assert service_call(name, 1) == ("v1", 8)
    status = service_status(name)
    assert status.pinned
    assert status.status == "running"
    # Not retried on every message: the same failure stays the latest migration.
    assert migrate([mod.name]) == [migration]


def test_migrate_asks_a_busy_service_and_it_changes_code_before_its_next_message(
    managed: Make,
) -> None:
    mod = managed(
        "import threading\n\n__vsn__ = '1'\nGATE = threading.Event()\n\n"
        "def init(start):\n    return start\n\n"
        "def handle_call(msg, state):\n    return ('v1', state), state\n\n"
        "def handle_cast(msg, state):\n    GATE.wait(10)\n    return state + msg\n"
    )
    name = _name()
    start_service(name, mod.name, 1)
    gate = sys.modules[mod.name].GATE
    service_cast(name, 2)  # now busy in handle_cast until the gate opens
    wait_until(lambda: service_status(name).queued == 0, timeout=5, message="cast taken")
    mod.load(V2)
    [unanswered] = migrate([mod.name], timeout=0.05)
    assert not unanswered.ok
    assert "no answer within" in (unanswered.error or "")
    gate.set()
    assert service_call(name, "get") == ("v2", {"count": 3, "changes": 1, "from": "1"})


def test_a_code_change_calling_its_own_service_fails_instead_of_waiting(managed: Make) -> None:
    mod = managed(V1)
    name = _name()
    start_service(name, mod.name, name)
    mod.load(
        "from hotmesh.service import service_call\n\n"
        "def handle_call(msg, state):\n    return msg, state\n\n"
        "def code_change(old_vsn, state):\n    return service_call(state, 'x', timeout=30)\n"
    )
    [migration] = migrate([mod.name], timeout=30)
    assert not migration.ok
    assert "cannot call itself" in (migration.error or "")
    assert service_status(name).pinned


def test_revert_runs_the_leaving_versions_down_code_change(managed: Make) -> None:
    mod = managed(V1)
    name = _name()
    start_service(name, mod.name, 4)
    v1 = code.current_version(mod.name)
    assert v1 is not None
    mod.load(V2)
    service_call(name, 1)
    code.revert([mod.name])
    [migration] = migrate([mod.name])
    assert migration.down
    assert migration.ok
    assert migration.to_vsn == v1.vsn
    assert service_call(name, "get") == ("v1", 5)


def test_crash_fails_the_caller_with_traceback_and_restarts_from_init(managed: Make) -> None:
    mod = managed(V1)
    name = _name()
    start_service(name, mod.name, 100)
    service_call(name, 1)
    with pytest.raises(ServiceCrashed) as info:
        service_call(name, "boom")
    assert "ZeroDivisionError: boom on purpose" in str(info.value)
    assert "Traceback" in str(info.value)
    assert service_call(name, "get") == ("v1", 100)
    status = service_status(name)
    assert status.restarts == 1
    assert status.last_crash is not None
    terminated = sys.modules[mod.name].TERMINATED
    assert len(terminated) == 1
    assert isinstance(terminated[0][0], ZeroDivisionError)


def test_supervisor_gives_up_beyond_restart_intensity(managed: Make) -> None:
    mod = managed(V1)
    name = _name()
    start_service(name, mod.name, 0, max_restarts=2, period=60.0)
    for _ in range(3):
        with pytest.raises(ServiceCrashed):
            service_call(name, "boom")
    status = service_status(name)
    assert status.status == "failed"
    assert status.restarts == 2
    with pytest.raises(NoSuchService, match="gave up"):
        service_call(name, "get")
    assert name in services()
    stop_service(name)
    assert name not in services()


def test_temporary_service_is_not_restarted(managed: Make) -> None:
    mod = managed(V1)
    name = _name()
    start_service(name, mod.name, 0, restart="temporary")
    with pytest.raises(ServiceCrashed):
        service_call(name, "boom")
    assert service_status(name).status == "failed"


def test_suspended_service_queues_messages_until_resumed(managed: Make) -> None:
    mod = managed(V1)
    name = _name()
    start_service(name, mod.name, 0)
    suspend(name)
    service_cast(name, 2)
    service_cast(name, 3)
    assert get_state(name) == 0
    assert service_status(name).status == "suspended"
    assert service_status(name).queued == 2
    with pytest.raises(CallTimeout):
        service_call(name, "get", timeout=0.05)
    resume(name)
    assert service_call(name, "get") == ("v1", 5)


def test_code_change_runs_while_suspended(managed: Make) -> None:
    mod = managed(V1)
    name = _name()
    start_service(name, mod.name, 1)
    suspend(name)
    mod.load(V2)
    [migration] = migrate([mod.name])
    assert migration.ok
    assert get_state(name)["count"] == 1
    resume(name)


def test_replace_state_and_a_failing_replacement_changes_nothing(managed: Make) -> None:
    mod = managed(V1)
    name = _name()
    start_service(name, mod.name, 1)
    assert replace_state(name, lambda state: state * 10) == 10
    with pytest.raises(ServiceError, match="state is unchanged"):
        replace_state(name, lambda state: state / 0)
    assert get_state(name) == 10


def test_init_failure_at_start_raises_and_registers_nothing(managed: Make) -> None:
    mod = managed("def init():\n    raise RuntimeError('no config')\n")
    name = _name()
    with pytest.raises(ServiceCrashed, match="no config"):
        start_service(name, mod.name)
    assert name not in services()


def test_duplicate_name_is_refused(managed: Make) -> None:
    mod = managed(V1)
    name = _name()
    start_service(name, mod.name, 0)
    with pytest.raises(ServiceError, match="already running"):
        start_service(name, mod.name, 0)


def test_stop_calls_terminate_and_later_calls_fail(managed: Make) -> None:
    mod = managed(V1)
    name = _name()
    start_service(name, mod.name, 9)
    stop_service(name)
    assert sys.modules[mod.name].TERMINATED == [("stop", 9)]
    with pytest.raises(NoSuchService):
        service_call(name, "get")


def test_info_without_handle_info_is_dropped_and_service_keeps_running(managed: Make) -> None:
    mod = managed(V1)
    name = _name()
    start_service(name, mod.name, 0)
    service_info(name, "stray")
    assert service_call(name, "get") == ("v1", 0)


def test_call_from_asyncio_does_not_block_the_loop(managed: Make) -> None:
    mod = managed(V1)
    name = _name()
    start_service(name, mod.name, 0)

    async def main() -> list[object]:
        return list(await asyncio.gather(*(service_call_async(name, 1) for _ in range(20))))

    replies = asyncio.run(main())
    assert sorted(r[1] for r in replies) == list(range(1, 21))  # type: ignore[index]


def test_no_frame_of_the_callback_module_between_messages(managed: Make) -> None:
    mod = managed(V1)
    name = _name()
    start_service(name, mod.name, 0)
    service_call(name, 1)
    thread = next(t for t in threading.enumerate() if t.name == f"hotmesh-service-{name}")
    mod.load(V2)
    migrate([mod.name])
    assert not code.check_process_code(thread, mod.name)


def test_unmanaged_module_is_called_through_sys_modules(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    modname = f"hm_plain_{uuid.uuid4().hex[:8]}"
    (plain / f"{modname}.py").write_text(
        "def init():\n    return []\n\n"
        "def handle_call(msg, state):\n    return len(state) + 1, [*state, msg]\n"
    )
    sys.path.insert(0, str(plain))
    name = _name()
    try:
        start_service(name, modname)
        assert service_call(name, "a") == 1
        assert service_call(name, "b") == 2
        assert service_status(name).vsn is None
    finally:
        stop_service(name)
        sys.path.remove(str(plain))


def test_unknown_service_is_a_clear_error() -> None:
    with pytest.raises(NoSuchService, match="no service named"):
        service_call("never-started", 1)


def test_queued_callers_fail_promptly_when_the_supervisor_gives_up(managed: Make) -> None:
    mod = managed(V1)
    name = _name()
    start_service(name, mod.name, 0, restart="temporary")
    suspend(name)
    results: dict[object, type[BaseException]] = {}

    def caller(msg: object) -> None:
        try:
            service_call(name, msg)
        except (ServiceCrashed, NoSuchService) as exc:
            results[msg] = type(exc)

    first = threading.Thread(target=caller, args=("boom",))
    first.start()
    wait_until(lambda: service_status(name).queued == 1, timeout=5, message="boom queued")
    late = threading.Thread(target=caller, args=(1,))
    late.start()
    wait_until(lambda: service_status(name).queued == 2, timeout=5, message="second queued")
    resume(name)
    first.join(5)
    late.join(5)
    assert results == {"boom": ServiceCrashed, 1: NoSuchService}


def test_a_service_calling_itself_fails_instead_of_deadlocking(managed: Make) -> None:
    mod = managed(
        "from hotmesh.service import service_call\n\n"
        "def init(name):\n    return name\n\n"
        "def handle_call(msg, state):\n    return service_call(state, msg), state\n"
    )
    name = _name()
    start_service(name, mod.name, name)
    with pytest.raises(ServiceCrashed, match="cannot call itself"):
        service_call(name, "x", timeout=5.0)
