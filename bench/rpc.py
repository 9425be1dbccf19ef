"""Remote call speed against raw pyzmq, measured in one run (real processes, loopback).

Prints: the round trip of a raw pyzmq DEALER -> ROUTER + msgpack echo next to
``node.call`` (median, p99, ratio); the same raw echo with CURVE and with the
server handing each request to a worker thread, which splits the ratio into
what encryption costs, what the hop off the I/O thread costs (hotmesh runs user
code off its I/O thread by design) and the rest; calls per second with concurrent callers,
and multicall latency to 4, 8 and 16 nodes. Run: ``python bench/rpc.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgpack
import zmq

import hotmesh
from hotmesh.testing import LocalCluster

RAW_SERVER = """
import queue, sys, threading, msgpack, zmq
curve, handoff = "curve" in sys.argv, "handoff" in sys.argv
ctx = zmq.Context()
sock = ctx.socket(zmq.ROUTER)
sock.linger = 0
if curve:
    sock.curve_secretkey = sys.argv[sys.argv.index("curve") + 1].encode()
    sock.curve_server = True
port = sock.bind_to_random_port("tcp://127.0.0.1")
print(port, flush=True)
lock = threading.Lock()
jobs = queue.SimpleQueue()

def reply(ident, request):
    data = msgpack.packb({"id": request["id"], "v": len(request["a"][0])})
    with lock:
        sock.send_multipart([ident, data])

def worker():
    while True:
        reply(*jobs.get())

if handoff:
    threading.Thread(target=worker, daemon=True).start()
while True:
    ident, data = sock.recv_multipart()
    request = msgpack.unpackb(data)
    if request["m"] == "stop":
        break
    if handoff:
        jobs.put((ident, request))
    else:
        reply(ident, request)
"""
PAYLOAD = "x" * 16


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(fn: Callable[[], object], count: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


class RawClient:
    """A raw pyzmq DEALER talking to a raw ROUTER + msgpack echo server process."""

    def __init__(self, *, curve: bool = False, handoff: bool = False) -> None:
        argv = [sys.executable, "-c", RAW_SERVER]
        server_public, server_secret = zmq.curve_keypair()
        argv += ["curve", server_secret.decode()] if curve else []
        argv += ["handoff"] if handoff else []
        self.server = subprocess.Popen(argv, stdout=subprocess.PIPE)
        assert self.server.stdout is not None
        port = int(self.server.stdout.readline())
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        if curve:
            self.sock.curve_serverkey = server_public
            self.sock.curve_publickey, self.sock.curve_secretkey = zmq.curve_keypair()
        self.sock.connect(f"tcp://127.0.0.1:{port}")
        self.ids = iter(range(1, 10**9))

    def round_trip(self) -> None:
        request = {"id": next(self.ids), "m": "len", "a": [PAYLOAD], "k": {}}
        self.sock.send(msgpack.packb(request))
        msgpack.unpackb(self.sock.recv())

    def close(self) -> None:
        self.sock.send(msgpack.packb({"id": 0, "m": "stop", "a": [], "k": {}}))
        self.sock.close()
        self.ctx.term()
        self.server.wait(5)


def interleaved(
    first: Callable[[], object], second: Callable[[], object], count: int
) -> tuple[list[float], list[float]]:
    """Time both in alternating blocks, so that load on the machine hits both alike."""
    a: list[float] = []
    b: list[float] = []
    block = max(1, count // 20)
    timed(first, 0, warmup=300)
    timed(second, 0, warmup=300)
    while len(a) < count:
        a += timed(first, block, warmup=0)
        b += timed(second, block, warmup=0)
    return a, b


def throughput(caller: hotmesh.Node, target: str, threads: int, seconds: float) -> float:
    done = 0
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def worker() -> None:
        nonlocal done
        n = 0
        while time.perf_counter() < stop_at:
            caller.call(target, "len", PAYLOAD)
            n += 1
        with lock:
            done += n

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return done / (time.perf_counter() - started)


def line(label: str, samples: list[float]) -> str:
    med, p99 = statistics.median(samples) * 1e6, percentile(samples, 0.99) * 1e6
    return f"{label:<34} median {med:8.1f} us   p99 {p99:8.1f} us"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--fanout", type=int, default=16, help="largest multicall")
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory()
    # Keep the bench's registry entries out of the user's state dir.
    os.environ["HOTMESH_STATE_DIR"] = str(Path(tmp.name) / "state")
    with tmp, LocalCluster(args.fanout, tick=2.0, directory=Path(tmp.name) / "c") as cluster:
        cluster.wait_full_mesh(timeout=30)
        caller = cluster.client("bench")
        target = cluster.names[0]
        variants = {
            "raw pyzmq DEALER/ROUTER + msgpack": {},
            "  same, with CURVE": {"curve": True},
            "  same, CURVE + hop to a worker": {"curve": True, "handoff": True},
        }
        results: dict[str, tuple[list[float], list[float]]] = {}
        for label, options in variants.items():
            raw_client = RawClient(**options)
            try:
                results[label] = interleaved(
                    raw_client.round_trip, lambda: caller.call(target, "len", PAYLOAD), args.calls
                )
            finally:
                raw_client.close()
        raw, calls = results["raw pyzmq DEALER/ROUTER + msgpack"]
        print("round trip, 16-byte argument, one call in flight (alternating blocks)")
        print(line("raw pyzmq DEALER/ROUTER + msgpack", raw))
        print(line("node.call", calls))
        ratio = statistics.median(calls) / statistics.median(raw)
        print(f"{'node.call / raw (median)':<34} {ratio:.2f}x   (target: within 2x)")
        print("what the ratio is made of (each baseline timed against node.call again):")
        for label in list(variants)[1:]:
            base, against = results[label]
            share = statistics.median(against) / statistics.median(base)
            print(f"{line(label, base)}   node.call / this {share:.2f}x")
        print()
        for threads in (1, 4, 16):
            rate = throughput(caller, target, threads, seconds=2.0)
            print(f"calls/s with {threads:>2} concurrent callers     {rate:10.0f}")
        print()
        print("multicall (one caller, N target processes on this host)")
        for n in (4, 8, 16):
            if n > args.fanout:
                break
            targets = cluster.names[:n]
            samples = timed(lambda t=targets: caller.multicall(t, "len", PAYLOAD), 300, 30)
            print(line(f"multicall to {n:>2} nodes", samples))


if __name__ == "__main__":
    main()
