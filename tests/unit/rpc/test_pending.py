"""Pending calls: ids, deadlines and node-down bookkeeping (no sockets, no clock)."""

from __future__ import annotations

from hotmesh._rpc.pending import PendingCalls


def test_ids_are_unique_and_increasing() -> None:
    calls: PendingCalls[str] = PendingCalls()
    ids = [calls.add("b@h", 10.0, f"w{i}") for i in range(3)]
    assert ids == sorted(set(ids))


def test_settle_returns_each_call_once() -> None:
    calls: PendingCalls[str] = PendingCalls()
    call_id = calls.add("b@h", 10.0, "w")
    pending = calls.settle("b@h", call_id)
    assert pending is not None and pending.waiter == "w" and pending.node == "b@h"
    assert calls.settle("b@h", call_id) is None
    assert len(calls) == 0


def test_node_down_settles_only_that_nodes_calls() -> None:
    calls: PendingCalls[str] = PendingCalls()
    first = calls.add("b@h", 10.0, "w1")
    calls.add("c@h", 10.0, "w2")
    second = calls.add("b@h", 10.0, "w3")
    assert [p.call_id for p in calls.node_down("b@h")] == [first, second]
    assert calls.node_down("b@h") == []
    assert len(calls) == 1


def test_expire_settles_calls_past_their_deadline() -> None:
    calls: PendingCalls[str] = PendingCalls()
    early = calls.add("b@h", 1.0, "early")
    calls.add("b@h", 5.0, "late")
    assert calls.expire(now=0.5) == []
    assert [p.call_id for p in calls.expire(now=1.0)] == [early]
    assert len(calls) == 1


def test_settled_call_leaves_no_trace_in_node_index() -> None:
    calls: PendingCalls[str] = PendingCalls()
    call_id = calls.add("b@h", 1.0, "w")
    calls.settle("b@h", call_id)
    assert calls.node_down("b@h") == []
    assert calls.get("b@h", call_id) is None


def test_calls_of_a_multicall_share_one_id_and_settle_per_node() -> None:
    calls: PendingCalls[str] = PendingCalls()
    call_id = calls.add_each(["b@h", "c@h"], 10.0, ["wb", "wc"])
    assert calls.add("b@h", 10.0, "w") > call_id
    settled = calls.settle("c@h", call_id)
    assert settled is not None and settled.waiter == "wc"
    assert calls.settle("c@h", call_id) is None
    assert [p.waiter for p in calls.node_down("b@h")] == ["wb", "w"]
    assert len(calls) == 0
