"""Pure decisions of a service's supervisor: restart intensity and code-change steps (no I/O).

Both take the facts (times, version ids) as arguments, so they are tested without threads.
"""

from __future__ import annotations

from collections import deque
from enum import Enum

RESTART_TYPES = ("permanent", "transient", "temporary")


class RestartIntensity:
    """OTP's restart intensity: at most ``max_restarts`` restarts within ``period`` seconds.

    ``allow(now)`` records a restart and says whether it stays within the limit; the
    first restart that makes more than ``max_restarts`` in any window of ``period``
    seconds is refused, and the supervisor gives up (OTP's supervisor shutdown).
    """

    def __init__(self, max_restarts: int, period: float) -> None:
        if max_restarts < 0:
            raise ValueError(f"max_restarts must be >= 0, got {max_restarts}")
        if period <= 0:
            raise ValueError(f"period must be > 0 seconds, got {period}")
        self.max_restarts = max_restarts
        self.period = period
        self._times: deque[float] = deque()

    def allow(self, now: float) -> bool:
        """Record a restart at ``now``; True if it keeps within the intensity limit."""
        self._times.append(now)
        while self._times and self._times[0] <= now - self.period:
            self._times.popleft()
        return len(self._times) <= self.max_restarts


def should_restart(restart: str, *, crashed: bool) -> bool:
    """Whether a service that ended is restarted, by its restart type (OTP's child spec).

    ``permanent`` always restarts, ``transient`` only after a crash, ``temporary`` never.
    """
    if restart == "permanent":
        return True
    if restart == "transient":
        return crashed
    return False


class CodeStep(Enum):
    """What a service does about its callback module's version before the next message."""

    STAY = "stay"  # already runs the current version
    PINNED = "pinned"  # a code_change to the current version failed: keep the old code
    UP = "up"  # a new version: call the new version's code_change(old_vsn, state)
    # Back to the version run before: the leaving version's code_change(("down", vsn)).
    DOWN = "down"


def next_code_step(
    running: str, previous: str | None, current: str, failed_target: str | None
) -> CodeStep:
    """Decide the code step from version ids.

    Args:
        running: the version whose functions the service calls now.
        previous: the version the service ran before ``running`` (None if none).
        current: the module's current version in the code server.
        failed_target: the version a code_change last failed to reach (None if none).
    """
    if current == running:
        return CodeStep.STAY
    if current == failed_target:
        return CodeStep.PINNED
    if current == previous:
        return CodeStep.DOWN
    return CodeStep.UP
