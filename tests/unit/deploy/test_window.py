"""The airbag's state machine, with time as an argument."""

from __future__ import annotations

import pytest

from hotmesh.deploy.window import ProvisionalWindow, check_interval_for


def test_unconfirmed_window_reverts_at_the_deadline() -> None:
    window = ProvisionalWindow.open(now=100.0, window=30.0, check_interval=50.0)
    assert window.due(now=129.9) is None
    assert window.wait_time(now=120.0) == pytest.approx(10.0)
    assert window.due(now=130.0) == "revert"
    assert window.expire(now=130.0) is True
    assert window.state == "reverted"
    assert "not confirmed within 30 s" in (window.reason or "")
    assert window.due(now=200.0) is None
    assert window.wait_time(now=200.0) is None


def test_confirmation_wins_and_is_final() -> None:
    window = ProvisionalWindow.open(now=0.0, window=10.0)
    assert window.confirm(now=5.0) is True
    assert window.state == "confirmed"
    assert window.confirm(now=6.0) is False
    assert window.expire(now=10.0) is False
    assert window.state == "confirmed"


def test_confirmation_after_a_revert_is_refused() -> None:
    window = ProvisionalWindow.open(now=0.0, window=10.0)
    assert window.expire(now=10.0) is True
    assert window.confirm(now=10.5) is False
    assert window.state == "reverted"


def test_health_checks_are_due_every_interval_and_a_failure_reverts() -> None:
    window = ProvisionalWindow.open(now=0.0, window=10.0, check_interval=1.0)
    assert window.due(now=0.5) is None
    assert window.due(now=1.0) == "check"
    assert window.checked(now=1.0, failure=None) is False
    assert window.due(now=1.5) is None
    assert window.due(now=2.0) == "check"
    assert window.checked(now=2.0, failure="db_ping raised OSError") is True
    assert window.state == "reverted"
    assert window.reason == "health check failed: db_ping raised OSError"


def test_deadline_comes_before_a_later_check() -> None:
    window = ProvisionalWindow.open(now=0.0, window=1.0, check_interval=5.0)
    assert window.wait_time(now=0.0) == pytest.approx(1.0)
    assert window.due(now=1.0) == "revert"


@pytest.mark.parametrize("bad", [0, -1, True, "30", None])
def test_window_must_be_positive_seconds(bad: object) -> None:
    with pytest.raises(ValueError, match="positive"):
        ProvisionalWindow.open(now=0.0, window=bad)  # type: ignore[arg-type]


def test_check_interval_scales_with_the_window_within_bounds() -> None:
    assert check_interval_for(0.5) == 0.1
    assert check_interval_for(30.0) == 3.0
    assert check_interval_for(600.0) == 5.0
