"""Remote calls between real node processes: call, cast, multicall, errors, timeouts."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

import hotmesh
from hotmesh._mesh import client as mesh_client
from hotmesh._rpc import client_calls
from hotmesh.testing import LocalCluster
from tests.waiting import wait_until

pytestmark = pytest.mark.cluster
HERE = __name__

# ---- functions the nodes run (resolved there by dotted path) -------------
_gate = threading.Event()
_remembered: list[Any] = []


def add(a: int, b: int = 0) -> int:
    return a + b


def echo(*args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return args, kwargs


def fail(text: str) -> None:
    raise ValueError(text)


def whoami() -> str:
    return hotmesh.current_node().name


def unencodable() -> Any:
    return threading.Lock()


def block(timeout: float) -> bool:
    return _gate.wait(timeout)


def open_gate() -> None:
    _gate.set()


def close_gate() -> None:
    _gate.clear()


def remember(value: Any) -> None:
    _remembered.append(value)


def remembered() -> list[Any]:
    return list(_remembered)


def end_in(name: str) -> None:
    raise {"SystemExit": SystemExit(3), "KeyboardInterrupt": KeyboardInterrupt()}.get(
        name, GeneratorExit()
    )


# ---- tests ---------------------------------------------------------------
def test_call_returns_the_remote_value(mesh3: LocalCluster, caller: hotmesh.Node) -> None:
    assert caller.call(mesh3.names[1], f"{HERE}.add", 2, b=3) == 5
    assert caller.call(mesh3.names[2], "os.getpid") == mesh3.node(2).pid


def test_call_runs_where_current_node_is_the_target(
    mesh3: LocalCluster, caller: hotmesh.Node
) -> None:
    assert caller.call(mesh3.names[0], f"{HERE}.whoami") == mesh3.names[0]


def test_call_to_self_has_the_same_semantics(caller: hotmesh.Node) -> None:
    assert caller.call(caller.name, f"{HERE}.add", 1, 1) == 2
    assert caller.call(caller.name, f"{HERE}.whoami") == caller.name
    with pytest.raises(hotmesh.RemoteError, match="boom"):
        caller.call(caller.name, f"{HERE}.fail", "boom")


def test_values_travel_faithfully(mesh3: LocalCluster, caller: hotmesh.Node) -> None:
    values = (
        (1, (2, 3)),
        {1, 2},
        frozenset({"a"}),
        b"\x00bytes",
        datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))),
        Decimal("1.10"),
        uuid.UUID(int=7),
        2**80,
    )
    args, kwargs = caller.call(mesh3.names[1], f"{HERE}.echo", *values, when=datetime.now(UTC))
    assert args == values
    assert [type(v) for v in args] == [type(v) for v in values]
    assert kwargs["when"].tzinfo is not None


def test_remote_exception_raises_remote_error_with_traceback(
    mesh3: LocalCluster, caller: hotmesh.Node
) -> None:
    with pytest.raises(hotmesh.RemoteError) as info:
        caller.call(mesh3.names[1], f"{HERE}.fail", "bad input")
    error = info.value
    assert error.node == mesh3.names[1]
    assert error.exc_type == "ValueError"
    assert error.message == "bad input"
    assert "in fail" in error.traceback
    assert isinstance(error.exc, ValueError)


@pytest.mark.parametrize("name", ["SystemExit", "KeyboardInterrupt", "GeneratorExit"])
def test_call_ending_in_a_base_exception_is_answered_at_once(
    mesh3: LocalCluster, caller: hotmesh.Node, name: str
) -> None:
    started = time.monotonic()
    with pytest.raises(hotmesh.RemoteError) as info:
        caller.call(mesh3.names[1], f"{HERE}.end_in", name, timeout=20)
    assert time.monotonic() - started < 1.0
    assert info.value.exc_type == name
    # The worker that ran it serves the next call.
    assert caller.call(mesh3.names[1], f"{HERE}.add", 1, 2) == 3


def test_unknown_function_raises_no_such_function(
    mesh3: LocalCluster, caller: hotmesh.Node
) -> None:
    with pytest.raises(hotmesh.NoSuchFunction, match="no_such_module_xyz"):
        caller.call(mesh3.names[1], "no_such_module_xyz.f")


def test_unencodable_argument_fails_at_the_caller(
    mesh3: LocalCluster, caller: hotmesh.Node
) -> None:
    with pytest.raises(hotmesh.EncodeError, match="lock"):
        caller.call(mesh3.names[1], f"{HERE}.echo", threading.Lock())


def test_unencodable_return_value_is_explained(mesh3: LocalCluster, caller: hotmesh.Node) -> None:
    with pytest.raises(hotmesh.RemoteError, match="cannot travel") as info:
        caller.call(mesh3.names[1], f"{HERE}.unencodable")
    assert info.value.exc_type == "hotmesh.EncodeError"


def test_slow_call_times_out_and_does_not_block_other_calls(
    mesh3: LocalCluster, caller: hotmesh.Node
) -> None:
    target = mesh3.names[2]
    caller.call(target, f"{HERE}.close_gate")
    with pytest.raises(hotmesh.CallTimeout, match="timed out"):
        caller.call(target, f"{HERE}.block", 30.0, timeout=0.2)
    # The blocked call still runs on the target; other calls go through.
    results = [caller.call(target, f"{HERE}.add", i, 1) for i in range(20)]
    assert results == list(range(1, 21))
    caller.call(target, f"{HERE}.open_gate")


def test_concurrent_callers_each_get_their_own_reply(
    mesh3: LocalCluster, caller: hotmesh.Node
) -> None:
    results: dict[int, int] = {}

    def worker(i: int) -> None:
        for j in range(20):
            results[i * 100 + j] = caller.call(mesh3.names[j % 3], f"{HERE}.add", i * 100, j)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == {k: k for k in results} and len(results) == 160


def test_cast_runs_without_a_reply(mesh3: LocalCluster, caller: hotmesh.Node) -> None:
    token = uuid.uuid4().hex
    assert caller.cast(mesh3.names[1], f"{HERE}.remember", token) is None
    wait_until(
        lambda: token in caller.call(mesh3.names[1], f"{HERE}.remembered"),
        timeout=5,
        message="cast value not seen",
    )


def test_cast_to_unknown_node_raises_node_down(caller: hotmesh.Node) -> None:
    with pytest.raises(hotmesh.NodeDown):
        caller.cast("nobody@nowhere", f"{HERE}.remember", 1)


def test_multicall_returns_results_and_bad_nodes(mesh3: LocalCluster, caller: hotmesh.Node) -> None:
    targets = [*mesh3.names, caller.name, "ghost@nowhere"]
    results, bad = caller.multicall(targets, f"{HERE}.whoami", timeout=5.0)
    assert results == {name: name for name in [*mesh3.names, caller.name]}
    assert list(bad) == ["ghost@nowhere"]
    assert isinstance(bad["ghost@nowhere"], hotmesh.NodeDown)


def test_multicall_reports_remote_errors_and_timeouts_per_node(
    mesh3: LocalCluster, caller: hotmesh.Node
) -> None:
    slow = mesh3.names[2]
    caller.call(slow, f"{HERE}.close_gate")
    try:
        results, bad = caller.multicall(mesh3.names, f"{HERE}.block", 30.0, timeout=0.3)
        assert results == {}
        assert all(isinstance(e, hotmesh.CallTimeout) for e in bad.values())
        results, bad = caller.multicall(mesh3.names[:2], f"{HERE}.fail", "x", timeout=5.0)
        assert results == {}
        assert {type(e) for e in bad.values()} == {hotmesh.RemoteError}
    finally:
        caller.multicall(mesh3.names, f"{HERE}.open_gate")


def test_shipped_function_runs_on_the_target(mesh3: LocalCluster, caller: hotmesh.Node) -> None:
    def double_pid(factor: int) -> int:
        import os

        return os.getpid() * factor

    assert caller.call(mesh3.names[1], double_pid, 2) == 2 * mesh3.node(1).pid


def test_client_connection_makes_plain_calls(mesh3: LocalCluster) -> None:
    with mesh_client.Connection(mesh3.endpoints[0], mesh3.cookie) as conn:
        assert client_calls.call(conn, f"{HERE}.add", 40, 2) == 42
        with pytest.raises(hotmesh.RemoteError, match="nope"):
            client_calls.call(conn, f"{HERE}.fail", "nope")
        endpoint = client_calls.call(conn, "hotmesh._node.endpoint_of", mesh3.names[2])
        assert endpoint == mesh3.endpoints[2]
        assert client_calls.ping(conn)["node"] == mesh3.names[0]
