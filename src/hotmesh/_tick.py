"""Every membership timer derived from one number, the tick (no I/O).

The tick is the time within which a silent peer is reported down. The
membership driver, the transport's ZMTP heartbeats and the seed and redial
schedules all read their periods from one ``Tick``, so they stay in proportion
whatever tick a node is given.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TICK = 4.0
"""Seconds within which a silent peer is reported down."""


@dataclass(frozen=True)
class Tick:
    """The membership timers of a node with a tick of ``seconds``.

    Attributes:
        seconds: a silent peer is reported down within this time.
    """

    seconds: float = DEFAULT_TICK

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise ValueError(f"the tick must be positive, not {self.seconds!r}")

    @property
    def heartbeat(self) -> float:
        """Period of the membership timer (heartbeats, dials, seeds): a quarter tick."""
        return self.seconds / 4

    @property
    def down_after(self) -> float:
        """Silence after which a peer is down: three quarters of a tick."""
        return 0.75 * self.seconds

    @property
    def members_every(self) -> int:
        """Heartbeats between two that carry the member list (once per tick)."""
        return 4

    @property
    def dial_timeout(self) -> float:
        """How long a dial waits for the answer to its hello."""
        return self.down_after

    @property
    def redial_min(self) -> float:
        """First wait before redialling a lost peer or a silent seed."""
        return self.heartbeat

    @property
    def redial_max(self) -> float:
        """Longest wait between two redials (backoff doubles up to it)."""
        return self.seconds

    @property
    def reseed_every(self) -> float:
        """Seconds between two rounds of seed resolution once joined."""
        return 8 * self.seconds

    @property
    def zmtp_interval_ms(self) -> int:
        """ZMTP heartbeat interval of every mesh socket (libzmq's own pings)."""
        return max(100, int(self.heartbeat * 1000))

    @property
    def zmtp_timeout_ms(self) -> int:
        """ZMTP heartbeat timeout: a connection silent this long after a ping is closed."""
        return max(100, int(self.down_after * 1000) - self.zmtp_interval_ms)

    @property
    def zmtp_ttl_ms(self) -> int:
        """ZMTP time-to-live asked of the remote side."""
        return max(100, int(self.down_after * 1000))


DEFAULT = Tick(DEFAULT_TICK)
