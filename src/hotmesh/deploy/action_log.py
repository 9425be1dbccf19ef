"""The durable record of which upgrade actions ran on this node: a JSON file
under its state dir, keyed by release and action id. File I/O."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hotmesh._files import atomic_write_json, read_json


def record_key(release: str | None, action_id: str) -> str:
    """The record key of an action in a release (``"v2/2026-11-24-migrate"``)."""
    return f"{release or 'unreleased'}/{action_id}"


class ActionLog:
    """The durable record of which upgrade actions ran on this node (a JSON file).

    Every change is an atomic file replace, so a crash never loses a record
    nor leaves a torn file. An action is marked ``started`` before it runs
    and ``done`` after, so a node that dies inside an action knows it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def run(self, key: str, action: Callable[[], object]) -> BaseException | None:
        """Run ``action`` on the record ``key``: ``started`` before, ``done`` after.

        Returns None when it completed, else what it raised (any
        BaseException), its record dropped so that it runs again next time.
        """
        self.mark_started(key, time.time())
        try:
            action()
        except BaseException as exc:
            self.forget(key)
            return exc
        self.mark_done(key, time.time())
        return None

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
