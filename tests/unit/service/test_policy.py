"""Restart intensity and code-step decisions, as pure functions of times and version ids."""

from __future__ import annotations

import pytest

from hotmesh.service._policy import CodeStep, RestartIntensity, next_code_step, should_restart


def test_intensity_allows_max_restarts_within_period_then_refuses() -> None:
    intensity = RestartIntensity(max_restarts=2, period=5.0)
    assert intensity.allow(now=0.0)
    assert intensity.allow(now=1.0)
    assert not intensity.allow(now=2.0)


def test_intensity_forgets_restarts_older_than_period() -> None:
    intensity = RestartIntensity(max_restarts=1, period=5.0)
    assert intensity.allow(now=0.0)
    assert intensity.allow(now=5.5)
    assert not intensity.allow(now=6.0)


def test_intensity_zero_refuses_first_restart() -> None:
    assert not RestartIntensity(max_restarts=0, period=1.0).allow(now=0.0)


@pytest.mark.parametrize(("max_restarts", "period"), [(-1, 5.0), (3, 0.0)])
def test_intensity_rejects_bad_limits(max_restarts: int, period: float) -> None:
    with pytest.raises(ValueError):
        RestartIntensity(max_restarts, period)


def test_restart_types_follow_otp_child_specs() -> None:
    assert should_restart("permanent", crashed=False)
    assert should_restart("transient", crashed=True)
    assert not should_restart("transient", crashed=False)
    assert not should_restart("temporary", crashed=True)


def test_same_version_stays() -> None:
    assert next_code_step("b", "a", "b", None) is CodeStep.STAY


def test_new_version_goes_up() -> None:
    assert next_code_step("a", None, "b", None) is CodeStep.UP


def test_return_to_previous_version_goes_down() -> None:
    assert next_code_step("b", "a", "a", None) is CodeStep.DOWN


def test_failed_target_stays_pinned_until_current_changes() -> None:
    assert next_code_step("a", None, "b", "b") is CodeStep.PINNED
    assert next_code_step("a", None, "c", "b") is CodeStep.UP
