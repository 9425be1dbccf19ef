"""Byte layouts of the scalar ext types: big ints, datetimes, dates, times,
timedeltas, Decimals, UUIDs and complex numbers (no I/O).

Each layout is documented in docs/reference/wire-protocol.md ("Ext codes").

``decimal`` and ``uuid`` load with the first such value decoded: until a
program imports them, no value it sends can be a Decimal or a UUID, so their
encoders are found through ``late_encoder`` (every node loads this module as
it starts; ``_decimal`` alone is a quarter of a megabyte of memory).
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, Any

import msgpack

from hotmesh._errors import DecodeError

if TYPE_CHECKING:
    import decimal
    import uuid

__all__ = ["DECODERS", "ENCODERS", "encode_int", "late_encoder"]

EXT_BIGINT = 5
EXT_DATETIME = 6
EXT_DATE = 7
EXT_TIME = 8
EXT_TIMEDELTA = 9
EXT_DECIMAL = 10
EXT_UUID = 11
EXT_COMPLEX = 12

_DATE = struct.Struct(">HBB")
_DATETIME = struct.Struct(">HBBBBBIB")
_TIME = struct.Struct(">BBBIB")
_OFFSET = struct.Struct(">q")
_TIMEDELTA = struct.Struct(">iII")
_COMPLEX = struct.Struct(">dd")
_INT64_MIN = -(2**63)
_UINT64_MAX = 2**64 - 1
# Decimal strings are parsed under a fixed context so that a caller's context
# with traps switched off cannot turn garbage into NaN (made with the first).
_decimal_context: decimal.Context | None = None


def _offset_bytes(tz_offset: timedelta | None) -> bytes:
    if tz_offset is None:
        return b""
    return _OFFSET.pack(tz_offset // timedelta(microseconds=1))


def encode_int(obj: int) -> Any:
    """A plain int when it fits msgpack's 64 bits, else a big int ext.

    Exact ints reach the packer's hook only when they do not fit; int
    subclasses (IntEnum...) always do and travel as plain ints.
    """
    value = int.__int__(obj)
    if _INT64_MIN <= value <= _UINT64_MAX:
        return value
    size = (value.bit_length() + 8) // 8
    return msgpack.ExtType(EXT_BIGINT, value.to_bytes(size, "big", signed=True))


def _enc_datetime(obj: datetime) -> msgpack.ExtType:
    head = _DATETIME.pack(
        obj.year, obj.month, obj.day, obj.hour, obj.minute, obj.second, obj.microsecond, obj.fold
    )
    return msgpack.ExtType(EXT_DATETIME, head + _offset_bytes(obj.utcoffset()))


def _enc_date(obj: date) -> msgpack.ExtType:
    return msgpack.ExtType(EXT_DATE, _DATE.pack(obj.year, obj.month, obj.day))


def _enc_time(obj: time) -> msgpack.ExtType:
    head = _TIME.pack(obj.hour, obj.minute, obj.second, obj.microsecond, obj.fold)
    return msgpack.ExtType(EXT_TIME, head + _offset_bytes(obj.utcoffset()))


def _enc_timedelta(obj: timedelta) -> msgpack.ExtType:
    return msgpack.ExtType(EXT_TIMEDELTA, _TIMEDELTA.pack(obj.days, obj.seconds, obj.microseconds))


def _enc_decimal(obj: decimal.Decimal) -> msgpack.ExtType:
    return msgpack.ExtType(EXT_DECIMAL, str(obj).encode("ascii"))


def _enc_uuid(obj: uuid.UUID) -> msgpack.ExtType:
    return msgpack.ExtType(EXT_UUID, obj.bytes)


def _enc_complex(obj: complex) -> msgpack.ExtType:
    return msgpack.ExtType(EXT_COMPLEX, _COMPLEX.pack(obj.real, obj.imag))


def _timezone(data: bytes, offset_at: int) -> tzinfo | None:
    if len(data) == offset_at:
        return None
    if len(data) != offset_at + _OFFSET.size:
        raise DecodeError(f"bad length {len(data)} for a date/time ext")
    (micros,) = _OFFSET.unpack_from(data, offset_at)
    return timezone(timedelta(microseconds=micros))


def _dec_datetime(data: bytes) -> datetime:
    year, month, day, hour, minute, second, micro, fold = _DATETIME.unpack_from(data)
    tz = _timezone(data, _DATETIME.size)
    return datetime(year, month, day, hour, minute, second, micro, tz, fold=fold)


def _dec_time(data: bytes) -> time:
    hour, minute, second, micro, fold = _TIME.unpack_from(data)
    return time(hour, minute, second, micro, _timezone(data, _TIME.size), fold=fold)


def _dec_date(data: bytes) -> date:
    return date(*_DATE.unpack(data))


def _dec_timedelta(data: bytes) -> timedelta:
    days, seconds, micros = _TIMEDELTA.unpack(data)
    if seconds >= 86400 or micros >= 1_000_000:
        raise DecodeError("timedelta ext out of range")
    return timedelta(days, seconds, micros)


def _dec_bigint(data: bytes) -> int:
    if not data:
        raise DecodeError("empty big int ext")
    return int.from_bytes(data, "big", signed=True)


def _dec_decimal(data: bytes) -> decimal.Decimal:
    global _decimal_context
    import decimal

    if _decimal_context is None:
        _decimal_context = decimal.Context(traps=[decimal.InvalidOperation])
    return decimal.Decimal(data.decode("ascii"), _decimal_context)


def _dec_uuid(data: bytes) -> uuid.UUID:
    import uuid

    return uuid.UUID(bytes=data)


def _dec_complex(data: bytes) -> complex:
    real, imag = _COMPLEX.unpack(data)
    return complex(real, imag)


DECODERS: dict[int, Callable[[bytes], Any]] = {
    EXT_BIGINT: _dec_bigint,
    EXT_DATETIME: _dec_datetime,
    EXT_DATE: _dec_date,
    EXT_TIME: _dec_time,
    EXT_TIMEDELTA: _dec_timedelta,
    EXT_DECIMAL: _dec_decimal,
    EXT_UUID: _dec_uuid,
    EXT_COMPLEX: _dec_complex,
}


# By exact type; codec.py also walks this in order for subclasses, so datetime
# must stay before date.
ENCODERS: dict[type, Callable[[Any], msgpack.ExtType]] = {
    datetime: _enc_datetime,
    date: _enc_date,
    time: _enc_time,
    timedelta: _enc_timedelta,
    complex: _enc_complex,
}

# (module, class, encoder) of the types whose module may not be loaded yet.
_LATE: tuple[tuple[str, str, Callable[[Any], msgpack.ExtType]], ...] = (
    ("decimal", "Decimal", _enc_decimal),
    ("uuid", "UUID", _enc_uuid),
)


def late_encoder(obj: object) -> Callable[[Any], msgpack.ExtType] | None:
    """The encoder of a Decimal or UUID (or a subclass), else None.

    Asked after the other encoders: a value of those types exists only once
    its module is loaded, so this looks only in loaded modules.
    """
    for module_name, class_name, encoder in _LATE:
        module = sys.modules.get(module_name)
        if module is not None and isinstance(obj, getattr(module, class_name)):
            return encoder
    return None
