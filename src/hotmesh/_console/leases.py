"""Client leases of console sessions: who stopped pinging, and which detached
sessions have been idle long enough to reap (pure: takes ``now``, no I/O)."""

from __future__ import annotations

from hotmesh._record import record


@record(frozen=True)
class Detach:
    """The client of session ``sid`` stopped renewing its lease."""

    sid: str


@record(frozen=True)
class Reap:
    """Session ``sid`` is detached and idle: end it."""

    sid: str


Effect = Detach | Reap


@record
class _Lease:
    heard: float
    detached: bool = False
    idle_since: float | None = None


class LeaseBook:
    """Tracks each session's last sign of life from its client.

    A client renews its lease with every message (pings included). After
    ``lease`` seconds of silence the session is detached: its running
    statement goes on. A detached session is reaped once it has been idle
    (no statement running or queued) for ``idle_timeout`` seconds. A message
    from the client before the reap attaches it again.
    """

    def __init__(self, lease: float, idle_timeout: float) -> None:
        self.lease = lease
        self.idle_timeout = idle_timeout
        self._leases: dict[str, _Lease] = {}

    def heard(self, sid: str, now: float) -> None:
        """The client of ``sid`` spoke at ``now``."""
        entry = self._leases.get(sid)
        if entry is None:
            self._leases[sid] = _Lease(heard=now)
        else:
            entry.heard = now
            entry.detached = False

    def forget(self, sid: str) -> None:
        self._leases.pop(sid, None)

    def is_detached(self, sid: str) -> bool:
        entry = self._leases.get(sid)
        return entry is not None and entry.detached

    def tick(self, now: float, busy: set[str]) -> list[Effect]:
        """Effects due at ``now``; ``busy`` holds the sessions running a statement."""
        effects: list[Effect] = []
        for sid, entry in self._leases.items():
            if sid in busy:
                entry.idle_since = None
            elif entry.idle_since is None:
                entry.idle_since = now
            if not entry.detached and now - entry.heard > self.lease:
                entry.detached = True
                effects.append(Detach(sid))
            if (
                entry.detached
                and entry.idle_since is not None
                and now - max(entry.idle_since, entry.heard + self.lease) >= self.idle_timeout
            ):
                effects.append(Reap(sid))
        return effects
