"""hotmesh._gil.machine_turn: one job at a time among the processes of a state dir,
a deadline on the wait, and a job nested in another taking no second turn."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from hotmesh import _gil
from hotmesh._paths import state_root

# A process that holds the only turn until its stdin closes.
HOLDER = """
import sys
from hotmesh import _gil
from hotmesh._paths import state_root
_gil.TURN_SLOTS = 1
with _gil.machine_turn(state_root(), "job") as held:
    print("held" if held else "not held", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def holder(monkeypatch: pytest.MonkeyPatch) -> Iterator[subprocess.Popen[str]]:
    """Another process inside the machine's only turn (this test's state dir)."""
    monkeypatch.setattr(_gil, "TURN_SLOTS", 1)
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "held"
            yield proc
        finally:
            proc.kill()
            proc.wait(10)


def test_a_free_turn_is_taken_and_a_nested_job_shares_it() -> None:
    with (
        _gil.machine_turn(state_root(), "job") as outer,
        _gil.machine_turn(state_root(), "job", wait=0.0) as inner,
    ):
        assert outer and inner
    assert _gil._turn_held == 0


def test_a_job_waits_no_longer_than_its_deadline_and_then_runs_without_a_turn(
    holder: subprocess.Popen[str],
) -> None:
    with _gil.machine_turn(state_root(), "job", wait=0.05) as held:
        assert not held
    assert holder.stdin is not None
    holder.stdin.close()  # the holder lets its turn go and ends
    holder.wait(10)
    with _gil.machine_turn(state_root(), "job", wait=10.0) as held:
        assert held


def test_a_waiting_job_gets_the_turn_when_the_holder_lets_it_go(
    holder: subprocess.Popen[str],
) -> None:
    got: list[bool] = []
    entered = threading.Event()

    def job() -> None:
        with _gil.machine_turn(state_root(), "job", wait=30.0) as held:
            got.append(held)
            entered.set()

    thread = threading.Thread(target=job)
    thread.start()
    assert not entered.wait(0.1)  # still waiting while the other process holds the turn
    assert holder.stdin is not None
    holder.stdin.close()
    thread.join(30)
    assert got == [True]
