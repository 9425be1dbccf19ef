"""Upgrade actions (run once per node per release): declaring them, which are
pending, and the console helpers that edit this node's records (file I/O
through ``action_log``); the rest is pure."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from hotmesh import settings
from hotmesh._errors import DeployError
from hotmesh._record import field, record
from hotmesh.deploy import _state
from hotmesh.deploy.action_log import ActionLog, record_key
from hotmesh.deploy.release import ACTION_ID_RE, check_settings

F = TypeVar("F", bound=Callable[..., Any])
ACTION_ATTR = "__upgrade_action__"


def _no_call() -> None:
    return None


@record(frozen=True)
class UpgradeAction:
    """One upgrade action: a stable ``id``, the settings it sets and the function to run.

    ``settings`` (key -> JSON value) are set on this node, live and on disk,
    before ``fn`` (no arguments) is called; they are declared, not run, so a
    dry run can show them. An action may have either or both.
    """

    id: str
    fn: Callable[[], Any] = _no_call
    settings: Mapping[str, Any] = field(default_factory=dict)

    def run(self) -> None:
        """Set its settings on this node (live and on disk), then call ``fn``."""
        for key, value in self.settings.items():
            settings.apply_local(key, True, value, f"upgrade action {self.id}")
        self.fn()

    @property
    def has_call(self) -> bool:
        """True when the action runs a function (whose effects no dry run can show)."""
        return self.fn is not _no_call

    def settings_changes(self, current: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The settings it would change, given this node's ``current`` settings.

        ``{"action", "key", "old", "new", "was_set"}`` each, for the keys whose
        value would differ (``old`` is None and ``was_set`` False when unset).
        """
        return [
            {
                "action": self.id,
                "key": key,
                "old": current.get(key),
                "new": value,
                "was_set": key in current,
            }
            for key, value in self.settings.items()
            if key not in current or current[key] != value
        ]


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
    if not isinstance(action_id, str) or not ACTION_ID_RE.match(action_id):
        raise DeployError(
            f"upgrade action id {action_id!r} is invalid: use letters, digits and "
            "'-_.:' (e.g. '2026-11-24-migrate-counters')"
        )
    return action_id


def normalize(actions: Iterable[Any]) -> list[UpgradeAction]:
    """Turn ``(id, fn)`` and ``(id, {settings})`` pairs, decorated functions and
    ``UpgradeAction`` into a list.

    Raises:
        DeployError: an entry has no id, a bad id, is not callable, has bad
            settings, or an id repeats.
    """
    result: list[UpgradeAction] = []
    for entry in actions:
        if isinstance(entry, UpgradeAction):
            action = entry
            check_settings(f"upgrade action {action.id}", action.settings)
        elif isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], Mapping):
            action_id = _check_id(entry[0])
            values = check_settings(f"upgrade action {action_id}", entry[1])
            action = UpgradeAction(action_id, settings=values)
        elif isinstance(entry, tuple) and len(entry) == 2:
            action = UpgradeAction(_check_id(entry[0]), entry[1])
        elif callable(entry) and hasattr(entry, ACTION_ATTR):
            action = UpgradeAction(_check_id(getattr(entry, ACTION_ATTR)), entry)
        else:
            raise DeployError(
                f"upgrade action {entry!r} has no id: pass (id, fn), (id, {{settings}}) "
                "or decorate it with @upgrade_action(id)"
            )
        if not callable(action.fn):
            raise DeployError(f"upgrade action {action.id}: {action.fn!r} is not callable")
        if any(a.id == action.id for a in result):
            raise DeployError(f"upgrade action id {action.id} is given twice")
        result.append(action)
    return result


def merged(given: list[UpgradeAction], declared: list[UpgradeAction]) -> list[UpgradeAction]:
    """The given actions, then the declared (manifest) ones whose id was not given."""
    ids = {a.id for a in given}
    return given + [a for a in declared if a.id not in ids]


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


def _book(release: str | None) -> tuple[ActionLog, str | None]:
    deployment = _state.current()
    return deployment.action_log(), release or deployment.release


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
