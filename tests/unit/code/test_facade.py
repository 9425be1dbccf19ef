"""The facade switch on its own: reference counts, all-or-nothing, no code run inside."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from hotmesh.code.facade import Switch


def _facade(name: str, **contents: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(contents)
    return module


class _Exploding(dict):  # type: ignore[type-arg]
    """A dict whose update fails, as a MemoryError in the middle of a batch would."""

    def update(self, *args: Any, **kwargs: Any) -> None:
        raise MemoryError("injected")


def test_switch_moves_one_reference_from_old_to_new_namespace() -> None:
    facade = _facade("m", X=1)
    old = facade.__dict__
    new = {"__name__": "m", "X": 2}
    before_old, before_new = sys.getrefcount(old), sys.getrefcount(new)
    switch = Switch()
    switch.show(facade, new)
    switch.apply()
    assert facade.__dict__ is new and facade.X == 2
    assert sys.getrefcount(old) == before_old - 1
    assert sys.getrefcount(new) == before_new + 1


def test_failure_halfway_undoes_every_step_and_keeps_reference_counts() -> None:
    first, second = _facade("m1", X=1), _facade("m2", X=1)
    old1, old2 = first.__dict__, second.__dict__
    new1, new2 = {"X": 2}, {"X": 2}
    table = {"kept": "before"}
    counts = [sys.getrefcount(d) for d in (old1, old2, new1, new2)]
    switch = Switch()
    switch.show(first, new1)
    switch.update(table, {"kept": "after", "added": 1})
    switch.update(_Exploding(), {"x": 1})
    switch.show(second, new2)
    with pytest.raises(MemoryError):
        switch.apply()
    assert first.__dict__ is old1 and second.__dict__ is old2
    assert table == {"kept": "before"}
    assert [sys.getrefcount(d) for d in (old1, old2, new1, new2)] == counts
    # The switch object is reusable and clean after the failure.
    switch.show(first, new1)
    switch.apply()
    assert first.X == 2 and second.X == 1


def test_showing_one_facade_twice_in_a_batch_is_refused() -> None:
    facade = _facade("m")
    switch = Switch()
    switch.show(facade, {"X": 1})
    with pytest.raises(ValueError, match="shown twice"):
        switch.show(facade, {"X": 2})


def test_values_replaced_by_the_batch_are_released_after_it() -> None:
    seen: list[bool] = []
    facade = _facade("m")
    new: dict[str, Any] = {}

    class Finalized:
        def __del__(self) -> None:
            # A finalizer run inside the batch would see the facade half-switched.
            seen.append(facade.__dict__ is new)

    table: dict[str, Any] = {"slot": Finalized()}
    switch = Switch()
    switch.update(table, {"slot": None})
    switch.show(facade, new)
    switch.apply()
    assert seen == [True]
