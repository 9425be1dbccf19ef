"""Hypothesis strategies for values that travel, and an exact (type-aware) comparison."""

from __future__ import annotations

import decimal
import math
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

_offsets = st.timedeltas(
    min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
)
fixed_timezones = st.one_of(st.none(), st.just(UTC), st.builds(timezone, _offsets))


def _scalars(allow_nan: bool) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(2**200), max_value=2**200),
        st.floats(allow_nan=allow_nan),
        st.text(max_size=20),
        st.binary(max_size=20),
        st.datetimes(timezones=fixed_timezones),
        st.dates(),
        st.times(timezones=fixed_timezones),
        st.timedeltas(),
        st.decimals(allow_nan=allow_nan),
        st.uuids(),
        st.complex_numbers(allow_nan=allow_nan),
    )


hashables = st.recursive(
    _scalars(allow_nan=False),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(tuple), st.frozensets(inner, max_size=4)
    ),
    max_leaves=8,
)

values = st.recursive(
    _scalars(allow_nan=True),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=5).map(tuple),
        st.dictionaries(hashables, inner, max_size=5),
        st.sets(hashables, max_size=5),
        st.frozensets(hashables, max_size=5),
    ),
    max_leaves=25,
)


def same(a: Any, b: Any) -> bool:
    """True when ``b`` is ``a`` rebuilt exactly: same types all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if isinstance(a, complex):
        return same(a.real, b.real) and same(a.imag, b.imag)
    if isinstance(a, decimal.Decimal):
        return a.compare_total(b) == 0
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            same(ka, kb) and same(va, vb)
            for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True)
        )
    if isinstance(a, (datetime, time)):
        return (
            a.replace(tzinfo=None) == b.replace(tzinfo=None)
            and a.fold == b.fold
            and a.utcoffset() == b.utcoffset()
            and (a.tzinfo is None) == (b.tzinfo is None)
        )
    if isinstance(a, (set, frozenset)):
        return a == b and {type(x) for x in a} == {type(x) for x in b}
    if isinstance(a, (date, timedelta, uuid.UUID, int, str, bytes)) or a is None:
        return a == b
    raise AssertionError(f"no comparison for {type(a)!r}")
