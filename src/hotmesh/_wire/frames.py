"""Frames: the envelope every mesh and console message travels in: magic,
protocol version, size limit, then a packed message dict (no I/O)."""

from __future__ import annotations

from typing import Any

from hotmesh._errors import DecodeError, EncodeError, MessageTooLarge, ProtocolVersionError
from hotmesh._wire.codec import pack, unpack

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "HEADER",
    "HEADER_SIZE",
    "MAGIC",
    "PROTOCOL_VERSION",
    "decode_frame",
    "encode_frame",
    "too_large",
]

PROTOCOL_VERSION: int = 1
DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024

MAGIC = b"HM"
# Header: magic (2 bytes), protocol version (1 byte), flags (1 byte, always 0
# in version 1: reserved so that a later version can mark compression without
# changing the header size).
HEADER_SIZE = 4
HEADER = MAGIC + bytes([PROTOCOL_VERSION, 0])
"""A version 1 frame's header: ``HEADER + pack(message)`` is the frame of a
message this process built itself (what ``encode_frame`` checks first)."""
_COPY_BELOW = 64 * 1024


def encode_frame(message: dict[str, Any], *, max_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> bytes:
    """Wrap ``message`` in a frame: header, then the packed dict.

    Args:
        message: a dict with at least ``"t"``, the message type (a short str).
        max_size: largest frame allowed, header included, in bytes.

    Raises:
        EncodeError: ``message`` is not a dict with a str ``"t"``, or holds a
            value that cannot travel (the message names its type and path).
        MessageTooLarge: the frame would exceed ``max_size``.
    """
    if type(message) is not dict:
        raise EncodeError(f"a message must be a dict, not {type(message)!r}")
    kind = message.get("t")
    if not isinstance(kind, str):
        raise EncodeError(f"a message needs a str 't' (its type), got {kind!r}")
    frame = HEADER + pack(message)
    if len(frame) > max_size:
        raise too_large(kind, len(frame), max_size)
    return frame


def too_large(kind: str, size: int, max_size: int) -> MessageTooLarge:
    """The error for a ``kind`` message whose frame is ``size`` bytes, over ``max_size``."""
    return MessageTooLarge(f"{kind!r} message is {size} bytes, over the {max_size}-byte limit")


def decode_frame(
    data: bytes | bytearray | memoryview, *, max_size: int = DEFAULT_MAX_MESSAGE_SIZE
) -> dict[str, Any]:
    """Check a received frame's header and decode its message.

    The size is checked on the raw length first, before anything is parsed.

    Raises:
        MessageTooLarge: ``data`` is longer than ``max_size``.
        ProtocolVersionError: the frame speaks another protocol version.
        DecodeError: bad magic, truncated, garbage, not a dict, or no str ``"t"``.
    """
    size = len(data)
    if size > max_size:
        raise MessageTooLarge(f"frame of {size} bytes is over the {max_size}-byte limit")
    if data[:HEADER_SIZE] != HEADER:
        _raise_bad_header(bytes(data[:HEADER_SIZE]))
    # Small bodies are cheaper to copy than to view; large ones are not.
    body = data[HEADER_SIZE:] if size <= _COPY_BELOW else memoryview(data)[HEADER_SIZE:]
    message = unpack(body)
    if type(message) is not dict:
        raise DecodeError(f"frame holds {type(message).__name__}, not a message dict")
    if not isinstance(message.get("t"), str):
        raise DecodeError("message has no str 't' (its type)")
    return message


def _raise_bad_header(header: bytes) -> None:
    """Say what is wrong with a header that is not ours."""
    if len(header) < HEADER_SIZE:
        raise DecodeError(f"truncated frame: {len(header)} bytes, shorter than the header")
    if header[:2] != MAGIC:
        raise DecodeError(f"not a hotmesh frame: starts with {header[:2]!r}")
    if header[2] != PROTOCOL_VERSION:
        raise ProtocolVersionError(
            f"frame speaks protocol version {header[2]}; this node speaks version "
            f"{PROTOCOL_VERSION}"
        )
    raise DecodeError(f"unknown frame flags {header[3]:#04x}")
