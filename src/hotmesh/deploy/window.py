"""The airbag's state machine: a provisional upgrade's window, health-check
schedule and outcome. Pure: time is an argument, no clocks, threads or I/O."""

from __future__ import annotations

from typing import Literal

from hotmesh._record import record

State = Literal["provisional", "confirmed", "reverted"]
Due = Literal["revert", "check"]


def check_interval_for(window: float) -> float:
    """How often health checks run in a window: a tenth of it, within 0.1-5 s."""
    return min(5.0, max(0.1, window / 10.0))


@record
class ProvisionalWindow:
    """One provisional upgrade, from the switch until confirmed or reverted.

    The upgrade reverts at ``deadline`` unless confirmed before, and at the
    first failed health check. Health checks run every ``check_interval``
    seconds from the start. Once decided, the outcome never changes.
    """

    started_at: float
    deadline: float
    check_interval: float
    state: State = "provisional"
    reason: str | None = None
    next_check: float = 0.0

    @classmethod
    def open(
        cls, now: float, window: float, check_interval: float | None = None
    ) -> ProvisionalWindow:
        """A window of ``window`` seconds starting at ``now``.

        Raises:
            ValueError: ``window`` is not a positive number of seconds.
        """
        if not isinstance(window, int | float) or isinstance(window, bool) or window <= 0:
            raise ValueError(
                f"provisional window must be a positive number of seconds, not {window!r}"
            )
        interval = check_interval if check_interval is not None else check_interval_for(window)
        return cls(now, now + window, interval, next_check=now + interval)

    @property
    def is_pending(self) -> bool:
        """True while neither confirmed nor reverted."""
        return self.state == "provisional"

    def confirm(self, now: float) -> bool:
        """Confirm the upgrade; True if this call decided it (False if already decided).

        A confirmation that arrives after the deadline but before the revert
        ran still counts: the node has not switched back yet.
        """
        if not self.is_pending:
            return False
        self.state, self.reason = "confirmed", f"confirmed at {now:.3f}"
        return True

    def due(self, now: float) -> Due | None:
        """What must happen at ``now``: the revert, a health check round, or nothing."""
        if not self.is_pending:
            return None
        if now >= self.deadline:
            return "revert"
        if now >= self.next_check:
            return "check"
        return None

    def checked(self, now: float, failure: str | None) -> bool:
        """Record a health-check round; True when it decides the revert.

        ``failure`` is None when every check passed, else why one failed.
        """
        if not self.is_pending:
            return False
        if failure is not None:
            return self.revert(now, f"health check failed: {failure}")
        self.next_check = now + self.check_interval
        return False

    def expire(self, now: float) -> bool:
        """Revert because the window ended unconfirmed; True if this call decided it."""
        return self.revert(now, f"not confirmed within {self.deadline - self.started_at:g} s")

    def revert(self, now: float, reason: str) -> bool:
        """Decide the revert for ``reason``; True if this call decided it."""
        if not self.is_pending:
            return False
        self.state, self.reason = "reverted", reason
        return True

    def wait_time(self, now: float) -> float | None:
        """Seconds until something is due (0 if overdue), None once decided."""
        if not self.is_pending:
            return None
        return max(0.0, min(self.deadline, self.next_check) - now)
