"""The pure plan of a rolling upgrade and its summary."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from hotmesh import RemoteError, UpgradeError
from hotmesh._wire.codec import pack, unpack
from hotmesh.deploy import plans
from hotmesh.deploy.report import UpgradeReport
from hotmesh.deploy.rollout import Batch, NodeResult, Rollout, _failure, plan

NODES = ["a@h", "b@h", "c@h", "d@h", "e@h"]


def test_one_at_a_time() -> None:
    assert plan(NODES[:3], 1) == [Batch(1, ("a@h",)), Batch(2, ("b@h",)), Batch(3, ("c@h",))]


def test_batches_keep_order_and_the_last_is_short() -> None:
    assert plan(NODES, 2) == [
        Batch(1, ("a@h", "b@h")),
        Batch(2, ("c@h", "d@h")),
        Batch(3, ("e@h",)),
    ]


def test_all_at_once() -> None:
    assert plan(NODES, len(NODES)) == [Batch(1, tuple(NODES))]


def test_empty_rollout_has_no_batches() -> None:
    assert plan([], 3) == []


@pytest.mark.parametrize("batch", [0, -1, 1.5, True])
def test_bad_batch_is_refused(batch: object) -> None:
    with pytest.raises(ValueError, match="batch"):
        plan(NODES, batch)  # type: ignore[arg-type]


def test_repeated_node_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        plan(["a@h", "b@h", "a@h"], 1)


def test_a_single_string_is_refused() -> None:
    with pytest.raises(ValueError, match="list"):
        plan("a@h", 1)


def _report(node: str) -> UpgradeReport:
    return UpgradeReport(
        node=node,
        ok=True,
        old_version="v1+aaaaaaaa",
        new_version="v2+bbbbbbbb",
        loaded=["shop.cart"],
        removed=[],
        actions=["2026-11-24-x"],
        lingering=[],
        provisional=None,
        seconds=0.01,
    )


def test_summary_table_lists_every_node_and_the_totals() -> None:
    rollout = Rollout(
        results=[
            NodeResult("a@h", True, 0.5, _report("a@h")),
            NodeResult("b@h", False, 0.2, step="load", reason="SyntaxError in shop/cart.py"),
        ],
        not_started=["c@h"],
        stopped="b@h failed at load",
        seconds=0.7,
    )
    table = rollout.table()
    assert re.search(r"^a@h +ok +v2\+bbbbbbbb +0\.50 s$", table, re.M)
    assert re.search(r"^b@h +FAILED +load: SyntaxError in shop/cart\.py +0\.20 s$", table, re.M)
    assert re.search(r"^c@h +skipped +not started$", table, re.M)
    assert table.endswith(
        "1 upgraded, 1 failed, 1 not started in 0.70 s (stopped: b@h failed at load)"
    )
    assert not rollout.ok
    assert repr(rollout) == "<rollout: " + table.splitlines()[-1] + ">"


def test_report_is_a_dict_with_attributes_and_a_console_repr() -> None:
    report = _report("a@h")
    assert report.new_version == "v2+bbbbbbbb"
    assert dict(report)["loaded"] == ["shop.cart"]
    assert repr(report).startswith(
        "<upgrade of a@h: ok, v1+aaaaaaaa -> v2+bbbbbbbb, 1 module loaded"
    )
    assert report.changed


def test_failure_of_a_remote_upgrade_keeps_step_and_reason() -> None:
    error = UpgradeError("c@h", "xref", "shop/a.py:3: shop.a uses shop.b.gone")
    # What a caller gets: the RemoteError carries the UpgradeError as it
    # travelled (rebuilt with its fields by the codec).
    travelled = unpack(pack(error))
    remote = RemoteError("c@h", "hotmesh._errors.UpgradeError", str(error), "tb", travelled)
    assert _failure(remote) == ("xref", "shop/a.py:3: shop.a uses shop.b.gone")
    assert _failure(UpgradeError("c@h", "load", "boom")) == ("load", "boom")
    assert _failure(TimeoutError("late"))[0] == "call"


def groups(steps: list[Batch]) -> list[list[str]]:
    assert [s.index for s in steps] == list(range(1, len(steps) + 1))
    return [list(s.nodes) for s in steps]


def test_batches_canary_and_all_at_once_keep_the_order() -> None:
    assert groups(plans.batches(2)(NODES)) == [["a@h", "b@h"], ["c@h", "d@h"], ["e@h"]]
    assert groups(plans.canary()(NODES)) == [["a@h"], ["b@h", "c@h", "d@h", "e@h"]]
    assert groups(plans.canary(2, then=2)(NODES)) == [["a@h", "b@h"], ["c@h", "d@h"], ["e@h"]]
    assert groups(plans.all_at_once()(NODES)) == [NODES]
    assert plans.canary(3)(["a@h"]) == [Batch(1, ("a@h",))]
    assert plans.batches(1)([]) == []


@pytest.mark.parametrize(
    "make",
    [
        lambda: plans.batches(0),
        lambda: plans.canary(first=-1),
        lambda: plans.canary(1, then=True),
        lambda: plans.batches(1.5),
    ],
)
def test_bad_sizes_are_refused_when_the_plan_is_made(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        make()


def test_repeated_nodes_and_a_bare_string_are_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        plans.canary()(["a@h", "a@h"])
    with pytest.raises(ValueError, match="string"):
        plans.batches(1)("a@h")
