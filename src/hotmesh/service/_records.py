"""Plain records a service reports: code migrations and status snapshots (no I/O)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Migration:
    """One code change of one service, as run by ``migrate`` or between two messages.

    ``from_vsn`` and ``to_vsn`` are code-server version ids (``Version.vsn``). ``ok`` is
    False when the code_change raised: the service then kept ``from_vsn``'s code and its
    state, and ``error`` holds the exception and its traceback text. ``down`` is True
    for a return to the version run before (a revert), where the leaving version's
    ``code_change(("down", vsn), state)`` ran.
    """

    service: str
    module: str
    from_vsn: str
    to_vsn: str
    ok: bool
    error: str | None = None
    down: bool = False

    def __str__(self) -> str:
        arrow = "<-" if self.down else "->"
        outcome = "ok" if self.ok else f"FAILED: {_summary(self.error)}"
        return f"{self.service} ({self.module}) {self.from_vsn} {arrow} {self.to_vsn}: {outcome}"


@dataclass(frozen=True)
class ServiceStatus:
    """A snapshot of one service, for consoles and health checks (``service_status``).

    ``status`` is ``running``, ``suspended``, ``failed`` (its supervisor gave up),
    ``stopped`` or ``starting``. ``vsn`` is the version whose code the service runs;
    ``pinned`` is True when that is not the module's current version because a
    code_change failed. ``restarts`` counts restarts since start; ``last_crash`` is the
    last crash's traceback text; ``last_migration`` is its latest code change.
    """

    name: str
    module: str
    status: str
    vsn: str | None
    pinned: bool
    restarts: int
    queued: int
    handled: int
    last_crash: str | None
    last_migration: Migration | None

    def as_dict(self) -> dict[str, Any]:
        """Plain values only, so the status can travel to another node."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServiceStatus:
        """Rebuild a status sent by ``as_dict``."""
        migration = data.get("last_migration")
        return cls(**{**data, "last_migration": Migration(**migration) if migration else None})


def _summary(text: str | None) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"
