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
        """Period of the membership timer (dials, seeds, member checks): a quarter tick."""
        return self.seconds / 4

    @property
    def down_after(self) -> float:
        """How long a name's holder has to answer a probe, and dials to be answered."""
        return 0.75 * self.seconds

    @property
    def members_every(self) -> int:
        """Timer periods between two member-list checks with a random peer (once a tick)."""
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
        """ZMTP heartbeat interval of each peer link: libzmq pings every half tick.

        The pings and their answers run in libzmq's threads, without the GIL:
        a node busy in C code while holding the GIL still answers them.
        """
        return max(100, int(self.seconds * 500))

    @property
    def zmtp_timeout_ms(self) -> int:
        """A link whose ping goes unanswered this long is closed (so silence is seen
        within ``zmtp_interval_ms + zmtp_timeout_ms``: nine tenths of a tick)."""
        return max(100, int(self.seconds * 400))

    @property
    def zmtp_ttl_ms(self) -> int:
        """How long the peer keeps our link without hearing from it: one tick."""
        return max(100, int(self.seconds * 1000))

    @property
    def router_zmtp_interval_ms(self) -> int:
        """ZMTP heartbeat interval of the inbox, to shed clients that vanished: 4 ticks."""
        return max(1000, int(self.seconds * 4000))


DEFAULT = Tick(DEFAULT_TICK)
