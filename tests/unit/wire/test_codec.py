"""Round trips, encode errors with paths, and malformed input for the value codec."""

from __future__ import annotations

import contextlib
import enum
import threading
import uuid
from collections import OrderedDict, namedtuple
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotmesh import DecodeError, EncodeError, WireError
from hotmesh._errors import NodeDown, NoSuchFunction, RemoteError, UpgradeError
from hotmesh._wire.codec import (
    MAX_EXCEPTION_NESTING,
    MAX_NESTING,
    RemoteExceptionData,
    pack,
    unpack,
)

from .values import same, values

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(values)
def test_every_encodable_value_round_trips_with_its_exact_type(value: Any) -> None:
    assert same(value, unpack(pack(value)))


@SETTINGS
@given(st.binary(max_size=64))
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        unpack(data)


@SETTINGS
@given(values, st.data())
def test_truncated_or_corrupted_encodings_raise_only_decode_error(
    value: Any, data: st.DataObject
) -> None:
    encoded = bytearray(pack(value))
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    with pytest.raises(DecodeError):
        unpack(bytes(encoded[:cut]))
    index = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    encoded[index] = data.draw(st.integers(min_value=0, max_value=255))
    with contextlib.suppress(DecodeError):
        unpack(bytes(encoded))


def test_tuples_stay_tuples_and_lists_stay_lists_when_nested_and_as_keys() -> None:
    value = {(1, (2, 3)): [(), [()], ([],)], "k": (frozenset({(1,)}),)}
    back = unpack(pack(value))
    assert same(value, back)
    assert type(next(iter(back))) is tuple


def test_big_integers_round_trip_beyond_64_bits() -> None:
    for n in (2**64, 2**64 - 1, -(2**63), -(2**63) - 1, 10**400, -(10**400)):
        assert same(n, unpack(pack(n)))


def test_aware_datetime_keeps_its_offset_and_zoneinfo_becomes_a_fixed_offset() -> None:
    zoneinfo = pytest.importorskip("zoneinfo")
    try:
        paris = zoneinfo.ZoneInfo("Europe/Paris")
    except zoneinfo.ZoneInfoNotFoundError:
        pytest.skip("no tz database")
    summer = datetime(2024, 7, 1, 12, 0, tzinfo=paris)
    back = unpack(pack(summer))
    assert back == summer
    assert back.tzinfo == timezone(timedelta(hours=2))
    fixed = datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))
    assert unpack(pack(fixed)).utcoffset() == timedelta(hours=-5, minutes=-30)
    assert unpack(pack(datetime(2024, 1, 1, tzinfo=UTC))).tzinfo is UTC


def test_naive_datetime_fold_and_time_survive() -> None:
    value = (datetime(2024, 11, 3, 1, 30, fold=1), time(23, 59, 59, 999999, fold=1))
    back = unpack(pack(value))
    assert back[0].fold == 1 and back[1].fold == 1
    assert back[0].tzinfo is None


def test_bytearray_and_memoryview_arrive_as_bytes() -> None:
    assert unpack(pack([bytearray(b"ab"), memoryview(b"cd")])) == [b"ab", b"cd"]


def test_subclasses_travel_as_their_base_type() -> None:
    class Colour(enum.IntEnum):
        RED = 1

    class Name(str):
        pass

    point = namedtuple("point", "x y")
    value = [Colour.RED, Name("n"), point(1, 2), OrderedDict(a=1), 3.5]
    back = unpack(pack(value))
    assert same([1, "n", (1, 2), {"a": 1}, 3.5], back)


def test_builtin_exception_comes_back_as_the_same_class() -> None:
    back = unpack(pack([ValueError("x"), KeyError("k"), OSError(2, "gone")]))
    assert type(back[0]) is ValueError and back[0].args == ("x",)
    assert type(back[1]) is KeyError and back[1].args == ("k",)
    assert type(back[2]) is FileNotFoundError and back[2].errno == 2


def test_hotmesh_errors_come_back_with_their_fields() -> None:
    upgrade, down, remote, plain = unpack(
        pack(
            [
                UpgradeError("a@h", "load", "SyntaxError in shop.cart"),
                NodeDown("b@h"),
                RemoteError("c@h", "ValueError", "bad", "tb text", ValueError("bad")),
                NoSuchFunction("no function x.y"),
            ]
        )
    )
    assert type(upgrade) is UpgradeError
    assert (upgrade.node, upgrade.step, upgrade.reason) == (
        "a@h",
        "load",
        "SyntaxError in shop.cart",
    )
    assert str(upgrade) == "upgrade of a@h failed at load: SyntaxError in shop.cart"
    assert type(down) is NodeDown and down.node == "b@h" and str(down) == "node b@h is down"
    assert type(remote) is RemoteError and remote.exc_type == "ValueError"
    assert remote.traceback == "tb text" and type(remote.exc) is ValueError
    assert type(plain) is NoSuchFunction and str(plain) == "no function x.y"


def test_hotmesh_error_from_an_older_sender_stays_data() -> None:
    # Before fields travelled, an UpgradeError's only arg was its message.
    old = RemoteExceptionData("hotmesh._errors.UpgradeError", "upgrade of a failed", ("x",))
    assert unpack(pack(old)) == old


def test_exception_group_carries_its_nested_exceptions() -> None:
    back = unpack(pack(ExceptionGroup("many", [ValueError(1), TypeError("t")])))
    assert type(back) is ExceptionGroup
    assert [type(e) for e in back.exceptions] == [ValueError, TypeError]


def test_user_exception_becomes_remote_exception_data_with_unencodable_args_as_repr() -> None:
    class Boom(Exception):
        pass

    marker = object()
    back = unpack(pack(Boom("bad", 3, marker)))
    assert isinstance(back, RemoteExceptionData)
    assert back.exc_type.endswith(
        "test_codec.test_user_exception_becomes_remote_exception"
        "_data_with_unencodable_args_as_repr.<locals>.Boom"
    )
    assert back.args == ("bad", 3, repr(marker))
    assert back.message == str(Boom("bad", 3, marker))
    assert unpack(pack(back)) == back


def test_exception_with_failing_str_still_travels() -> None:
    class Ugly(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    back = unpack(pack(Ugly()))
    assert isinstance(back, RemoteExceptionData)
    assert back.message == "<unprintable Ugly>"


def test_exception_holding_itself_travels_with_the_cycle_cut() -> None:
    exc = ValueError()
    exc.args = (exc,)
    back = unpack(pack(exc))
    assert type(back) is ValueError and type(back.args[0]) is ValueError
    assert back.args[0].args == ()


def test_exceptions_nested_too_deep_lose_the_innermost_args() -> None:
    exc: BaseException = ValueError("leaf")
    for level in range(MAX_EXCEPTION_NESTING + 3):
        exc = ValueError(level, exc)
    back = unpack(pack(exc))
    levels = 1
    while back.args and isinstance(back.args[-1], BaseException):
        back, levels = back.args[-1], levels + 1
    assert levels == MAX_EXCEPTION_NESTING
    assert back.args == ()


def test_decoding_refuses_exceptions_nested_too_deep() -> None:
    assert isinstance(unpack(_nested_exception_ext(MAX_EXCEPTION_NESTING)), ValueError)
    with pytest.raises(DecodeError, match="exceptions nested deeper"):
        unpack(_nested_exception_ext(MAX_EXCEPTION_NESTING + 1))


def _nested_exception_ext(levels: int) -> bytes:
    """Wire bytes of ``levels`` ValueErrors, each the only arg of the one outside it."""
    head = b"\x93\xb3builtins.ValueError\xa1m"  # [type name, message, ...
    inner = head + b"\x91\xc7\x00\x01"  # ... args: ()]
    ext = b"\xc8" + len(inner).to_bytes(2, "big") + b"\x04" + inner
    for _ in range(levels - 1):
        inner = head + b"\x92\xc7\x00\x01" + ext  # ... args: (ext,)]
        ext = b"\xc8" + len(inner).to_bytes(2, "big") + b"\x04" + inner
    return ext


def test_encode_error_names_type_and_path() -> None:
    with pytest.raises(EncodeError, match=r"cannot encode <class 'object'> at args\[1\]\['conn'\]"):
        pack({"args": (1, {"conn": object()})})
    with pytest.raises(EncodeError, match=r"<class 'object'> at top level"):
        pack(object())
    with pytest.raises(EncodeError, match=r"<class 'object'> at \[0\]\{…\}"):
        pack([{frozenset(), object()}])


def test_encode_error_for_an_unencodable_dict_key() -> None:
    class Key:
        pass

    with pytest.raises(EncodeError, match=r"Key'> as a dict key at args\[0\]"):
        pack({"args": [{Key(): 1}]})


def test_encode_error_is_a_type_error_and_a_wire_error() -> None:
    with pytest.raises(TypeError):
        pack(lambda: None)
    with pytest.raises(WireError):
        pack(lambda: None)


def test_cycles_and_excessive_nesting_raise_encode_error() -> None:
    loop: list[Any] = []
    loop.append((loop,))
    with pytest.raises(EncodeError, match="reference cycle"):
        pack(loop)
    deep: Any = None
    for _ in range(MAX_NESTING + 5):
        deep = (deep,)
    with pytest.raises(EncodeError, match="nested deeper"):
        pack(deep)


def test_lone_surrogate_string_raises_encode_error_with_reason() -> None:
    with pytest.raises(EncodeError, match=r"<class 'str'> at x: .*surrogates"):
        pack({"x": "\ud800"})


def test_packing_from_many_threads_at_once_keeps_values_apart() -> None:
    results: dict[int, bool] = {}

    def work(n: int) -> None:
        value = {"n": n, "a": tuple(range(n)), "s": {n}}
        results[n] = all(unpack(pack(value)) == value for _ in range(300))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == dict.fromkeys(range(8), True)


def test_pack_called_again_from_user_code_inside_a_hook_is_safe() -> None:
    class Chatty(Exception):
        def __str__(self) -> str:
            return repr(unpack(pack(("inner", 1))))

    back = unpack(pack({"e": Chatty(), "after": (1, 2)}))
    assert back["e"].message == "('inner', 1)"
    assert back["after"] == (1, 2)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "incomplete"),
        (b"\x92\x01", "incomplete"),
        (b"\xc1", "FormatError"),
        (b"\x01\x02", "ExtraData"),
        (b"\xd4\x63\x00", "unknown ext code 99"),
        (b"\xd4\x00\x00", "unknown ext code 0"),
        (b"\x92\x01\xc7\x00\x01", "marker outside"),
        (b"\xc7\x00\x01", "marker outside"),
        (b"\x91\xd4\x01\x00", "marker ext 1 carries"),
        (b"\xc7\x00\x05", "empty big int"),
        (b"\xc7\x03\x07\x07\xe8\x0d", "DecodeError|error"),
        (b"\xd6\x07\x07\xe8\x0d\x01", "month must be"),
        (b"\xc7\x03\x0a\xff\xfe\xfd", "UnicodeDecodeError"),
        (b"\xc7\x03\x0aabc", "InvalidOperation"),
        (b"\x81\x90\x01", "unhashable"),
        (b"\x91" * 3000 + b"\xc0", "StackError"),
        (b"\xa1\xff", "UnicodeDecodeError"),
        (b"\xc7\x03\x04\x92\x01\x02", "malformed exception"),
        (b"\xc7\x01\x04\xc1", "FormatError"),
        (b"\x93\xc7\x00\x04\x01\x02", "incomplete"),
    ],
)
def test_malformed_input_raises_decode_error(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        unpack(data)


def test_unpack_refuses_non_bytes() -> None:
    with pytest.raises(DecodeError, match="expected bytes"):
        unpack("text")  # type: ignore[arg-type]


def test_msgpack_timestamp_ext_arrives_as_aware_utc_datetime() -> None:
    assert unpack(b"\xd6\xff\x00\x00\x00\x01") == datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)


def test_scalars_of_every_supported_kind_round_trip() -> None:
    value = (
        None, True, -1, 1.5, "s", b"b", date(2024, 2, 29), timedelta(days=-1, microseconds=5),
        Decimal("-0.00"), Decimal("NaN"), Decimal("-Infinity"), uuid.UUID(int=7), 1 - 2j,
    )  # fmt: skip
    assert same(value, unpack(pack(value)))
