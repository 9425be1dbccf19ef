"""Upgrade actions (run once per node per release) and their durable records
under the node's state dir. ``ActionLog`` does file I/O; the rest is pure."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from hotmesh._errors import DeployError
from hotmesh._files import atomic_write_json, read_json

F = TypeVar("F", bound=Callable[..., Any])
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
ACTION_ATTR = "__upgrade_action__"


@dataclass(frozen=True)
class UpgradeAction:
    """One upgrade action: a stable ``id`` and the function to run (no arguments)."""

    id: str
    fn: Callable[[], Any]


def upgrade_action(action_id: str) -> Callable[[F], F]:
    """Decorator naming a function as the upgrade action ``action_id``.

    The function is returned unchanged (with the id attached), so it can be
    passed to ``upgrade_node(actions=[fn])``. Choose ids that never repeat,
    e.g. ``"2026-11-24-migrate-counters"``.

    Example::

        @upgrade_action("2026-11-24-migrate-counters")
        def migrate_counters():
            ...
    """
    _check_id(action_id)

    def mark(fn: F) -> F:
        setattr(fn, ACTION_ATTR, action_id)
        return fn

    return mark


def _check_id(action_id: object) -> str:
    if not isinstance(action_id, str) or not _ID_RE.match(action_id):
        raise DeployError(
            f"upgrade action id {action_id!r} is invalid: use letters, digits and "
            "'-_.:' (e.g. '2026-11-24-migrate-counters')"
        )
    return action_id


def normalize(actions: Iterable[Any]) -> list[UpgradeAction]:
    """Turn ``(id, fn)`` pairs, decorated functions and ``UpgradeAction`` into a list.

    Raises:
        DeployError: an entry has no id, a bad id, is not callable, or an id repeats.
    """
    result: list[UpgradeAction] = []
    for entry in actions:
        if isinstance(entry, UpgradeAction):
            action = entry
        elif isinstance(entry, tuple) and len(entry) == 2:
            action = UpgradeAction(_check_id(entry[0]), entry[1])
        elif callable(entry) and hasattr(entry, ACTION_ATTR):
            action = UpgradeAction(_check_id(getattr(entry, ACTION_ATTR)), entry)
        else:
            raise DeployError(
                f"upgrade action {entry!r} has no id: pass (id, fn) or decorate it "
                "with @upgrade_action(id)"
            )
        if not callable(action.fn):
            raise DeployError(f"upgrade action {action.id}: {action.fn!r} is not callable")
        if any(a.id == action.id for a in result):
            raise DeployError(f"upgrade action id {action.id} is given twice")
        result.append(action)
    return result


def record_key(release: str | None, action_id: str) -> str:
    """The record key of an action in a release (``"v2/2026-11-24-migrate"``)."""
    return f"{release or 'unreleased'}/{action_id}"


def pending(
    actions: Iterable[UpgradeAction], records: dict[str, dict[str, Any]], release: str | None
) -> list[UpgradeAction]:
    """The actions of ``release`` that have not completed on this node, in order.

    Raises:
        DeployError: an action was started but never finished (the node died
            while running it): it may have partly run, so it is not run again
            automatically; check its effects, then ``reset_action`` or
            ``mark_action_done``.
    """
    todo = []
    for action in actions:
        record = records.get(record_key(release, action.id))
        if record is None:
            todo.append(action)
        elif record.get("state") == "started":
            raise DeployError(
                f"upgrade action {action.id} of release {release} started at "
                f"{record.get('started_at')} and never finished on this node: check "
                "what it did, then hotmesh.deploy.mark_action_done(id) or "
                "hotmesh.deploy.reset_action(id)"
            )
    return todo


class ActionLog:
    """The durable record of which upgrade actions ran on this node (a JSON file).

    Every change is an atomic file replace, so a crash never loses a record
    nor leaves a torn file. An action is marked ``started`` before it runs
    and ``done`` after, so a node that dies inside an action knows it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def records(self) -> dict[str, dict[str, Any]]:
        """Every record: key -> {"state": "started" | "done", "started_at", "finished_at"}."""
        return dict(read_json(self.path, {}))

    def mark_started(self, key: str, now: float) -> None:
        """Record that the action ``key`` is about to run."""
        self._update(key, {"state": "started", "started_at": now})

    def mark_done(self, key: str, now: float) -> None:
        """Record that the action ``key`` completed."""
        record = self.records().get(key, {"started_at": now})
        self._update(key, {**record, "state": "done", "finished_at": now})

    def forget(self, key: str) -> bool:
        """Drop the record of ``key`` (a failed action, to be retried); True if it existed."""
        records = self.records()
        if records.pop(key, None) is None:
            return False
        atomic_write_json(self.path, records)
        return True

    def _update(self, key: str, record: dict[str, Any]) -> None:
        records = self.records()
        records[key] = record
        atomic_write_json(self.path, records)


def _book(release: str | None) -> tuple[ActionLog, str | None]:
    from hotmesh.deploy import _state

    deployment = _state.current()
    return ActionLog(deployment.state_dir / "actions.json"), release or deployment.release


def reset_action(action_id: str, release: str | None = None) -> bool:
    """Forget that ``action_id`` ran (or started) on this node, so it runs again.

    ``release`` defaults to the release this node runs. Returns True if a
    record was dropped.
    """
    book, release = _book(release)
    return book.forget(record_key(release, _check_id(action_id)))


def mark_action_done(action_id: str, release: str | None = None) -> None:
    """Record ``action_id`` as done on this node without running it."""
    import time

    book, release = _book(release)
    book.mark_done(record_key(release, _check_id(action_id)), time.time())
