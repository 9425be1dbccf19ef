"""The node's console audit log: one JSON object per line, appended (does file I/O)."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

_log = logging.getLogger("hotmesh.console")


class AuditLog:
    """Append-only JSON-lines log of console activity on one node.

    Each line holds ``ts`` (Unix time), ``node`` and the event's fields:
    ``attach``/``detach`` (with the client's OS user, host and pid, and the
    detach reason), ``exec`` (statement text, outcome, duration) and
    ``interrupt``. Lines are written with one ``write`` on a file opened
    in append mode, so concurrent writers never interleave within a line. A
    failing write is logged and never fails the statement being audited.
    """

    def __init__(self, path: Path, node: str) -> None:
        self.path = Path(path)
        self._node = node
        self._lock = threading.Lock()

    def write(self, event: dict[str, Any]) -> None:
        """Append ``event`` with a timestamp and the node name."""
        record = {"ts": round(time.time(), 6), "node": self._node, **event}
        line = json.dumps(record, ensure_ascii=False, default=repr) + "\n"
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, line.encode("utf-8"))
                finally:
                    os.close(fd)
        except OSError:
            _log.exception("cannot write the console audit log %s", self.path)

    def read(self) -> list[dict[str, Any]]:
        """Every record so far (for tests and tools); an absent log is empty."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]
