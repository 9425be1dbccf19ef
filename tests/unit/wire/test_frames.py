"""Frames: header, version, size limit and the errors for bad frames."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotmesh import DecodeError, EncodeError, MessageTooLarge, ProtocolVersionError
from hotmesh._wire.codec import pack
from hotmesh._wire.frames import (
    DEFAULT_MAX_MESSAGE_SIZE,
    HEADER_SIZE,
    MAGIC,
    PROTOCOL_VERSION,
    decode_frame,
    encode_frame,
)

from .values import same, values


def test_header_is_magic_version_and_zero_flags() -> None:
    frame = encode_frame({"t": "ping"})
    assert frame[:HEADER_SIZE] == b"HM\x01\x00" == MAGIC + bytes([PROTOCOL_VERSION, 0])
    assert frame[HEADER_SIZE:] == pack({"t": "ping"})


@settings(max_examples=100, deadline=None)
@given(values)
def test_message_round_trips_through_a_frame(value: Any) -> None:
    message = {"t": "call", "v": value}
    assert same(message, decode_frame(encode_frame(message)))


def test_decode_accepts_bytearray_and_memoryview() -> None:
    frame = encode_frame({"t": "x", "a": (1,)})
    assert (
        decode_frame(bytearray(frame)) == decode_frame(memoryview(frame)) == {"t": "x", "a": (1,)}
    )


@pytest.mark.parametrize("message", [[("t", "x")], {"a": 1}, {"t": 3}, None])
def test_encode_refuses_a_message_that_is_not_a_dict_with_str_t(message: Any) -> None:
    with pytest.raises(EncodeError):
        encode_frame(message)


def test_encode_error_names_the_path_inside_the_message() -> None:
    with pytest.raises(EncodeError, match=r"<class 'object'> at args\[1\]\['conn'\]"):
        encode_frame({"t": "call", "args": (1, {"conn": object()})})


def test_encode_refuses_a_frame_over_max_size() -> None:
    encode_frame({"t": "blob", "b": b"x" * 80}, max_size=100)
    with pytest.raises(MessageTooLarge, match=r"'blob' message is 1\d\d bytes, over the 100-byte"):
        encode_frame({"t": "blob", "b": b"x" * 100}, max_size=100)


def test_decode_checks_size_before_parsing() -> None:
    with pytest.raises(MessageTooLarge, match="over the 10-byte limit"):
        decode_frame(b"garbage that is not even a frame", max_size=10)
    with pytest.raises(MessageTooLarge):
        decode_frame(b"\0" * (DEFAULT_MAX_MESSAGE_SIZE + 1))


def test_unknown_version_names_both_versions() -> None:
    frame = bytearray(encode_frame({"t": "ping"}))
    frame[2] = 7
    with pytest.raises(ProtocolVersionError, match="version 7; this node speaks version 1"):
        decode_frame(bytes(frame))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (b"HM\x01", "truncated"),
        (b"XX\x01\x00\x80", "not a hotmesh frame"),
        (b"HM\x01\x01\x81\xa1t\xa1x", "unknown frame flags"),
        (b"HM\x01\x00", "malformed"),
        (b"HM\x01\x00\x81\xa1t", "malformed"),
        (b"HM\x01\x00\x93\x01\x02\x03", "holds list"),
        (b"HM\x01\x00\x80", "no str 't'"),
        (b"HM\x01\x00\x81\xa1t\x01", "no str 't'"),
        (b"HM\x01\x00\x81\xa1t\xa1x\xc0", "ExtraData"),
    ],
)
def test_bad_frames_raise_decode_error(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode_frame(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_raise_only_decode_error_or_too_large(data: bytes) -> None:
    with contextlib.suppress(DecodeError, MessageTooLarge):
        decode_frame(data, max_size=64)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_random_payload_behind_a_valid_header_raises_only_decode_error(payload: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_frame(b"HM\x01\x00" + payload)
