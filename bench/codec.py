"""Codec speed against plain msgpack, measured in the same run.

Run: .venv/bin/python bench/codec.py
Prints per-operation times and the ratios hotmesh / plain msgpack for a typical
call message (a dict with a 5-element args tuple of small values; msgpack gets
the same structure with a list) and for a frame round trip.
"""

from __future__ import annotations

import statistics
import timeit
from collections.abc import Callable

import msgpack

from hotmesh._wire.codec import pack, unpack
from hotmesh._wire.frames import decode_frame, encode_frame

NUMBER = 50_000
REPEAT = 7


def best_us(fn: Callable[[], object]) -> float:
    """Median over REPEAT runs of the time per call, in microseconds."""
    runs = timeit.repeat(fn, number=NUMBER, repeat=REPEAT)
    return statistics.median(runs) / NUMBER * 1e6


def main() -> None:
    call = {
        "t": "call",
        "id": 123456,
        "fn": "app.handlers.update_user",
        "a": (42, "alice", 3.5, None, b"\x00\x01"),
        "k": {"force": True},
        "dl": 1_700_000_000.25,
    }
    plain = dict(call, a=list(call["a"]))
    packed_plain = msgpack.packb(plain)
    packed = pack(call)
    frame = encode_frame(call)

    def plain_pack() -> bytes:
        return msgpack.packb(plain)

    def plain_unpack() -> object:
        return msgpack.unpackb(packed_plain)

    rows = [
        ("pack", best_us(lambda: pack(call)), best_us(plain_pack)),
        ("unpack", best_us(lambda: unpack(packed)), best_us(plain_unpack)),
        ("encode_frame", best_us(lambda: encode_frame(call)), best_us(plain_pack)),
        ("decode_frame", best_us(lambda: decode_frame(frame)), best_us(plain_unpack)),
    ]
    print(f"typical call message: {len(packed)} bytes (plain msgpack {len(packed_plain)})")
    print(f"{'operation':<14}{'hotmesh µs':>12}{'msgpack µs':>12}{'ratio':>8}")
    for name, ours, theirs in rows:
        print(f"{name:<14}{ours:>12.2f}{theirs:>12.2f}{ours / theirs:>8.2f}")


if __name__ == "__main__":
    main()
