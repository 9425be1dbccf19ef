"""Every membership timer derives from the tick."""

from __future__ import annotations

import pytest

from hotmesh._tick import DEFAULT, DEFAULT_TICK, Tick


def test_the_default_tick_is_four_seconds() -> None:
    assert DEFAULT == Tick(DEFAULT_TICK) == Tick(4.0)


@pytest.mark.parametrize("seconds", [0.2, 1.0, 4.0, 60.0])
def test_silence_is_seen_within_a_tick_and_a_quarter_and_timers_keep_their_proportions(
    seconds: float,
) -> None:
    tick = Tick(seconds)
    # libzmq pings every interval; an unanswered ping closes the link after the timeout.
    # libzmq's I/O thread runs each timer up to its slack late (a ping, the
    # closing of a link whose ping went unanswered).
    slack = tick.zmtp_slack_ms
    assert 0 < slack <= tick.zmtp_interval_ms / 10
    assert (tick.zmtp_interval_ms + tick.zmtp_timeout_ms + 2 * slack) / 1000 <= tick.silence_within
    assert tick.silence_within == 1.25 * seconds
    # A ping has half a tick (long ticks: ten seconds or more) to be answered: an
    # overloaded machine leaves threads unscheduled for seconds, and a late
    # answer drops a live link.
    assert tick.zmtp_timeout_ms >= min(0.5 * seconds, 10.0) * 1000
    assert tick.zmtp_ttl_ms >= 2 * tick.zmtp_interval_ms  # a live link is never dropped
    # The node that does not ping a peer judges it by the bytes its link brings:
    # silence within 1.25 tick, and a live pinger's ping as late as an answer may be.
    assert tick.quiet_limit_ms == int(tick.silence_within * 1000)
    assert tick.quiet_limit_ms - tick.zmtp_interval_ms - slack >= tick.zmtp_timeout_ms
    # An idle link costs a ping per interval: as rare as the tick allows.
    assert tick.zmtp_interval_ms >= min(0.55 * seconds * 1000, 100)
    idle, interval, count = tick.inbox_keepalive_s  # the kernel sheds vanished hosts
    assert (idle >= 10 * seconds or idle == 1) and interval >= 1 and count >= 1
    assert tick.heartbeat == seconds / 4
    assert tick.redial_min < tick.redial_max == seconds
    assert tick.dial_timeout < seconds < tick.reseed_every
    assert tick.connect_within >= 2 * seconds  # handshakes queue behind a busy CPU at start


@pytest.mark.parametrize("seconds", [0, -1.0])
def test_a_tick_must_be_positive(seconds: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        Tick(seconds)
