"""Frames: the envelope every mesh and console message travels in: magic,
protocol version, size limit, then a packed message dict (no I/O)."""

from __future__ import annotations

from typing import Any

from hotmesh._errors import DecodeError, EncodeError, MessageTooLarge, ProtocolVersionError
from hotmesh._wire.codec import pack, unpack

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "HEADER_SIZE",
    "MAGIC",
    "PROTOCOL_VERSION",
    "decode_frame",
    "encode_frame",
]

PROTOCOL_VERSION: int = 1
DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024

MAGIC = b"HM"
# Header: magic (2 bytes), protocol version (1 byte), flags (1 byte, always 0
# in version 1: reserved so that a later version can mark compression without
# changing the header size).
HEADER_SIZE = 4
_HEADER = MAGIC + bytes([PROTOCOL_VERSION, 0])


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
    frame = _HEADER + pack(message)
    if len(frame) > max_size:
        raise MessageTooLarge(
            f"{kind!r} message is {len(frame)} bytes, over the {max_size}-byte limit"
        )
    return frame


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
    if size < HEADER_SIZE:
        raise DecodeError(f"truncated frame: {size} bytes, shorter than the header")
    view = memoryview(data)
    if view[:2] != MAGIC:
        raise DecodeError(f"not a hotmesh frame: starts with {bytes(view[:2])!r}")
    version, flags = view[2], view[3]
    if version != PROTOCOL_VERSION:
        raise ProtocolVersionError(
            f"frame speaks protocol version {version}; this node speaks version {PROTOCOL_VERSION}"
        )
    if flags:
        raise DecodeError(f"unknown frame flags {flags:#04x}")
    message = unpack(view[HEADER_SIZE:])
    if type(message) is not dict:
        raise DecodeError(f"frame holds {type(message).__name__}, not a message dict")
    if not isinstance(message.get("t"), str):
        raise DecodeError("message has no str 't' (its type)")
    return message
