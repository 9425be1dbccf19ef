"""Upgrade actions: ids, normalisation and their durable records."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotmesh import DeployError
from hotmesh.deploy.action_log import ActionLog, record_key
from hotmesh.deploy.actions import UpgradeAction, merged, normalize, pending, upgrade_action


def _noop() -> None:
    return None


def test_pairs_decorated_functions_and_actions_normalise_in_order() -> None:
    @upgrade_action("2026-11-24-b")
    def b() -> None:
        return None

    actions = normalize([("2026-11-24-a", _noop), b, UpgradeAction("c", _noop)])
    assert [a.id for a in actions] == ["2026-11-24-a", "2026-11-24-b", "c"]
    assert actions[1].fn is b


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (_noop, "has no id"),
        (("bad id", _noop), "invalid"),
        (("ok-id", 42), "not callable"),
        (("ok-id", {"k": object()}), "not a JSON value"),
        (("ok-id", {"": 1}), "non-empty string"),
    ],
)
def test_bad_actions_are_refused(entry: object, message: str) -> None:
    with pytest.raises(DeployError, match=message):
        normalize([entry])


def test_a_settings_pair_is_an_action_that_only_sets_them() -> None:
    [action] = normalize([("limits", {"cart.max_items": 50})])
    assert dict(action.settings) == {"cart.max_items": 50} and not action.has_call
    assert action.settings_changes({"cart.max_items": 50}) == []
    assert action.settings_changes({}) == [
        {"action": "limits", "key": "cart.max_items", "old": None, "new": 50, "was_set": False}
    ]


def test_given_actions_come_first_and_replace_declared_ones_of_the_same_id() -> None:
    given = normalize([("b", _noop), ("a", {"k": 1})])
    declared = normalize([("a", _noop), ("c", _noop)])
    assert [(a.id, a.has_call) for a in merged(given, declared)] == [
        ("b", True),
        ("a", False),
        ("c", True),
    ]


def test_repeated_id_is_refused() -> None:
    with pytest.raises(DeployError, match="twice"):
        normalize([("a", _noop), ("a", _noop)])


def test_decorator_refuses_a_bad_id_at_definition() -> None:
    with pytest.raises(DeployError, match="invalid"):
        upgrade_action("")


def test_done_actions_are_not_pending_and_records_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "deploy" / "actions.json"
    actions = normalize([("a", _noop), ("b", _noop)])
    book = ActionLog(path)
    book.mark_started(record_key("v2", "a"), now=1.0)
    book.mark_done(record_key("v2", "a"), now=2.0)
    reopened = ActionLog(path).records()
    assert reopened["v2/a"] == {"state": "done", "started_at": 1.0, "finished_at": 2.0}
    assert [a.id for a in pending(actions, reopened, "v2")] == ["b"]
    # The same id in another release is another action.
    assert [a.id for a in pending(actions, reopened, "v3")] == ["a", "b"]


def test_an_action_interrupted_by_a_crash_is_not_run_again(tmp_path: Path) -> None:
    book = ActionLog(tmp_path / "actions.json")
    book.mark_started(record_key("v2", "a"), now=1.0)
    with pytest.raises(DeployError, match="never finished"):
        pending(normalize([("a", _noop)]), book.records(), "v2")


def test_forget_lets_a_failed_action_run_again(tmp_path: Path) -> None:
    book = ActionLog(tmp_path / "actions.json")
    book.mark_started("v2/a", now=1.0)
    assert book.forget("v2/a") is True
    assert book.forget("v2/a") is False
    assert book.records() == {}
