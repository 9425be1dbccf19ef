"""The rolling-upgrade runner against a fake node (no mesh): progress lines,
stopping at the first failure, health checks and Ctrl-C."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from hotmesh import UpgradeError
from hotmesh.deploy import plans
from hotmesh.deploy import rollout as rollout_mod
from hotmesh.deploy.plans import Batch
from hotmesh.deploy.rollout import rolling_upgrade


class FakeNode:
    """Answers node.call(target, fn) like a mesh whose upgrade succeeds or fails per node."""

    def __init__(self, failing: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.name = "driver@h"
        self.failing = failing
        self.calls: list[str] = []
        self.lock = threading.Lock()
        self.lost: dict[str, str] = {}

    def nodes(self) -> list[str]:
        return []

    def lost_nodes(self) -> dict[str, str]:
        return dict(self.lost)

    def call(self, target: str, fn: Any, *args: Any, timeout: float) -> Any:
        with self.lock:
            self.calls.append(target)
        if target in self.failing:
            raise UpgradeError(target, "load", f"SyntaxError in {target}")
        return {
            "node": target,
            "ok": True,
            "old_version": "v1+a",
            "new_version": "v2+b",
            "loaded": ["m"],
            "removed": [],
            "actions": [],
            "lingering": [],
            "provisional": None,
            "seconds": 0.001,
        }


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeNode]:
    def make(failing: set[str] = frozenset()) -> FakeNode:  # type: ignore[assignment]
        node = FakeNode(failing)
        monkeypatch.setattr(rollout_mod, "this_node", lambda: node)
        return node

    return make


NODES = ["a@h", "b@h", "c@h", "d@h"]
FIVE = [*NODES, "e@h"]


def _upgrade() -> None:
    return None


def test_every_node_gets_a_progress_line_and_the_summary(fake: Callable[..., FakeNode]) -> None:
    node = fake()
    lines: list[str] = []
    result = rolling_upgrade(NODES, upgrade=_upgrade, batch=2, out=lines.append)
    assert result.ok
    assert sorted(node.calls) == NODES
    assert lines[0] == "rolling upgrade of 4 node(s) in 2 batch(es) of 2"
    for name in NODES:
        assert any(line.startswith(f"{name}  ok, v1+a -> v2+b") for line in lines[1:5])
    assert "4 upgraded, 0 failed, 0 not started in" in lines[-1]


def test_first_failure_stops_the_rollout_and_raises_after_the_summary(
    fake: Callable[..., FakeNode],
) -> None:
    node = fake(failing={"c@h"})
    lines: list[str] = []
    with pytest.raises(UpgradeError) as info:
        rolling_upgrade(NODES, upgrade=_upgrade, out=lines.append)
    assert (info.value.node, info.value.step) == ("c@h", "load")
    assert node.calls == ["a@h", "b@h", "c@h"]
    summary = info.value.rollout  # type: ignore[attr-defined]
    assert summary.not_started == ["d@h"]
    assert "2 upgraded, 1 failed, 1 not started" in lines[-1]


def test_without_stop_on_error_the_others_still_run(fake: Callable[..., FakeNode]) -> None:
    node = fake(failing={"b@h"})
    with pytest.raises(UpgradeError):
        rolling_upgrade(NODES, upgrade=_upgrade, stop_on_error=False, out=lambda _: None)
    assert node.calls == NODES


def test_failed_health_check_stops_between_batches(fake: Callable[..., FakeNode]) -> None:
    node = fake()
    checked: list[list[str]] = []

    def check(batch: list[str]) -> bool:
        checked.append(batch)
        return len(checked) < 2

    with pytest.raises(UpgradeError) as info:
        rolling_upgrade(NODES, upgrade=_upgrade, check=check, out=lambda _: None)
    assert info.value.step == "check"
    assert checked == [["a@h"], ["b@h"]]
    assert node.calls == ["a@h", "b@h"]


def test_ctrl_c_waits_for_nodes_in_flight_then_stops(fake: Callable[..., FakeNode]) -> None:
    node = fake()
    lines: list[str] = []

    def out(line: str) -> None:
        lines.append(line)
        if line.startswith("a@h"):
            raise KeyboardInterrupt  # as if Ctrl-C came while printing a's line

    result = rolling_upgrade(NODES, upgrade=_upgrade, batch=2, out=out)
    assert result.interrupted
    assert sorted(r.node for r in result.results if r.ok) == ["a@h", "b@h"]
    assert result.not_started == ["c@h", "d@h"]
    assert sorted(node.calls) == ["a@h", "b@h"]
    assert "(interrupted)" in lines[-1]


def test_rollout_runs_a_canary_plan_and_stops_after_a_failed_canary_check(
    fake: Callable[..., FakeNode],
) -> None:
    node = fake()
    lines: list[str] = []
    checked: list[list[str]] = []

    def check(upgraded: list[str]) -> bool:
        checked.append(upgraded)
        return False

    with pytest.raises(UpgradeError) as info:
        rolling_upgrade(FIVE, plan=plans.canary(1), check=check, out=lines.append)
    assert lines[0] == "rolling upgrade of 5 node(s) in 2 batch(es) (canary(1, None))"
    assert node.calls == ["a@h"] and checked == [["a@h"]]
    assert info.value.step == "check" and info.value.node == "a@h"
    assert info.value.rollout.not_started == FIVE[1:]


def test_rollout_refuses_a_plan_that_loses_a_node_and_both_batch_and_plan(
    fake: Callable[..., FakeNode],
) -> None:
    node = fake()

    def lossy(nodes: Sequence[str]) -> list[Batch]:
        return [Batch(1, tuple(nodes[1:]))]

    with pytest.raises(ValueError, match="exactly once"):
        rolling_upgrade(FIVE, plan=lossy, out=lambda line: None)
    with pytest.raises(ValueError, match="not both"):
        rolling_upgrade(FIVE, batch=2, plan=plans.batches(2), out=lambda line: None)
    assert node.calls == []


def test_a_passed_check_prints_a_line_naming_it_and_the_nodes(
    fake: Callable[..., FakeNode],
) -> None:
    fake()
    lines: list[str] = []

    def confirm_when_healthy(batch: list[str]) -> None:
        pass  # returning None passes, as a check that only raises on failure does

    rolling_upgrade(NODES[:2], upgrade=_upgrade, check=confirm_when_healthy, out=lines.append)
    assert lines[2] == "check confirm_when_healthy passed after a@h"
    assert lines[4] == "check confirm_when_healthy passed after b@h"
    assert not any("passed" in line for line in lines[5:])


def test_a_failed_check_prints_no_passed_line(fake: Callable[..., FakeNode]) -> None:
    fake()
    lines: list[str] = []
    with pytest.raises(UpgradeError):
        rolling_upgrade(NODES, upgrade=_upgrade, check=lambda batch: False, out=lines.append)
    assert not any("passed" in line for line in lines)


def test_nodes_down_when_it_begins_are_said_and_shown_in_the_table(
    fake: Callable[..., FakeNode],
) -> None:
    node = fake()
    node.lost = {"x@h": "down 42 s (connection closed)", "a@h": "down 1 s (timeout)"}
    lines: list[str] = []
    result = rolling_upgrade(NODES[:2], upgrade=_upgrade, out=lines.append)
    # a@h is among the nodes asked (and answered here): only x@h is left out.
    assert lines[1] == "down, so not in this rollout: x@h (down 42 s (connection closed))"
    assert result.down == {"x@h": "down 42 s (connection closed)"}
    row = next(line for line in lines[-1].splitlines() if line.startswith("x@h"))
    assert row.split(None, 2)[1:] == ["down", "not in the rollout: down 42 s (connection closed)"]
    assert lines[-1].endswith("; 1 node(s) down, not in the rollout")
    assert result.ok  # every node it was given was upgraded
