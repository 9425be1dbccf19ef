"""Every membership timer derived from one number, the tick (no I/O).

The tick sets how soon a silent peer is reported down (within 1.25 tick). The
membership driver, the transport's ZMTP heartbeats and the seed and redial
schedules all read their periods from one ``Tick``, so they stay in proportion
whatever tick a node is given.
"""

from __future__ import annotations

from hotmesh._record import record

DEFAULT_TICK = 4.0
"""The default tick: a silent peer is reported down within 1.25 tick (5 s)."""


@record(frozen=True)
class Tick:
    """The membership timers of a node with a tick of ``seconds``.

    Attributes:
        seconds: a silent peer is reported down within 1.25 times this
            (``silence_within``); the membership timers are fractions of it.
    """

    seconds: float = DEFAULT_TICK

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise ValueError(f"the tick must be positive, not {self.seconds!r}")

    @property
    def heartbeat(self) -> float:
        """Period of the membership timer while dials, redials or seeds wait: a quarter tick.

        A settled node's timer runs once a tick (its member check).
        """
        return self.seconds / 4

    @property
    def down_after(self) -> float:
        """How long a name's holder has to answer a probe, and dials to be answered."""
        return 0.75 * self.seconds

    @property
    def connect_within(self) -> float:
        """How long an up peer's link may go without a connection, and the peer
        without a message of its own reaching us, before the peer is reported
        down ("never connected"): two ticks each.

        Only a peer that vanished silently before our link to it was ever made
        needs this (a dead process refuses the connection at once). Meanwhile
        its traffic over its own link to us shows it alive; and nodes started
        together queue their CURVE handshakes behind a busy CPU for seconds
        (128 nodes at once on 2 cores: a 0.75-tick limit reported peers down
        14,600 times while the mesh formed, each a redial more).
        """
        return 2 * self.seconds

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
    def silence_within(self) -> float:
        """Seconds within which a silent peer's link is closed: 1.25 tick (5 s at the
        default tick), the ping interval plus the time a ping has to be answered."""
        return 1.25 * self.seconds

    @property
    def zmtp_slack_ms(self) -> int:
        """How late libzmq's I/O thread may run its timers: a twentieth of a tick
        (200 ms at the default tick), the kernel's timer slack of that thread.

        A timer due then wakes the thread at the latest this much later, and
        earlier when anything else wakes it (a ping or an answer arriving):
        then every timer due runs at once, and those run together stay in step.
        So most pings leave with another wake-up instead of one of their own,
        which is most of what an idle mesh costs (see
        docs/explanation/membership.md). The interval and the time limit of
        the pings are shortened by as much, so that silence is still seen
        within ``silence_within``.
        """
        return int(self.seconds * 50)

    @property
    def zmtp_interval_ms(self) -> int:
        """ZMTP heartbeat interval of each peer link: 0.7 tick, or 0.95 tick less one
        second when that is longer, less the timer slack (2.6 s at the default
        tick; pings leave up to ``zmtp_slack_ms`` later).

        The pings and their answers run in libzmq's threads, without the GIL:
        a node busy in C code while holding the GIL still answers them. They
        are nearly all an idle mesh costs (one link of each pair of nodes
        pings, on its own timer), so they are as rare as the tick allows.
        """
        base = int(max(0.7 * self.seconds, 0.95 * self.seconds - 1.0) * 1000)
        return max(100, base - self.zmtp_slack_ms)

    @property
    def zmtp_timeout_ms(self) -> int:
        """A link whose ping goes unanswered this long (and up to the timer slack
        more) is closed: what the interval and the slack of both timers leave
        of ``silence_within`` (2.0 s at the default tick, 0.5 tick or more).

        The answer comes from the peer's libzmq thread, so this only covers a
        round trip and a busy scheduler, not the peer's Python; but a machine
        overloaded by nodes started at once leaves threads unscheduled for
        seconds, and each ping unanswered in time drops a live link (128 nodes
        on 2 cores while forming: about 2,900 drops with a 1 s limit, 330 with
        1.6 s; see docs/explanation/membership.md).
        """
        slack = self.zmtp_slack_ms
        return max(100, int(self.silence_within * 1000) - self.zmtp_interval_ms - 2 * slack)

    @property
    def zmtp_ttl_ms(self) -> int:
        """How long the peer keeps our link without hearing from it: two ticks
        (well past the interval: a live link is never dropped between pings).

        Not a silence detector: any other frame cancels the peer's TTL timer
        until our next ping re-arms it, so a node that sent a message and then
        stopped is never dropped this way. It only sheds dead connections;
        the peer judges silence by ``quiet_limit_ms``.
        """
        return max(200, int(self.seconds * 2000))

    @property
    def quiet_limit_ms(self) -> int:
        """A peer whose link to us has brought no byte for this long is down: 1.25 tick.

        Of each pair of nodes only one pings (each ping answered proves both
        alive); the other reads, from the kernel, when the pinger's link last
        brought anything (a ping or a message). The pinger's last ping left at
        most an interval and the timer slack before it fell silent, so it is
        reported down within ``silence_within``, and a live pinger's pings may
        come at least ``zmtp_timeout_ms`` late, like an answer to one.
        """
        return int(self.silence_within * 1000)

    @property
    def inbox_keepalive_s(self) -> tuple[int, int, int]:
        """TCP keepalive of the inbox's connections, to shed those whose host vanished:
        ``(idle, interval, count)`` seconds, seconds and probes; 15 ticks of
        silence, then 3 probes 5 ticks apart (2 minutes in all at the default tick).

        The kernel sends the probes: unlike pings, they cost the nodes nothing.
        Peers need none of it (their own pings, or ours to them, tell of their
        silence).
        """
        idle = max(1, round(15 * self.seconds))
        return idle, max(1, round(5 * self.seconds)), 3


DEFAULT = Tick(DEFAULT_TICK)
