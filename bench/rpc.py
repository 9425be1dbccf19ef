"""Remote calls against raw pyzmq and rpyc, measured in the same run (real processes, loopback).

Run: .venv/bin/python bench/rpc.py [--quick] [--before SRC] [--only PART,...]
     (about 3 min; --quick: 1 repeat, shorter; --before: also time the nodes of another
     source tree, e.g. ``git archive`` of an older commit's src/, in the same blocks, and
     for multicall each tree's calling side too, from a caller process importing that
     tree; --only: some of roundtrip, throughput, multicall, echo)

Figures of issue 13, each beside its baselines timed in alternating blocks, three
repeats (min/median/max), with the load average:
  - call round trip p50, 16-byte argument, one call in flight:
    ``node.call`` vs a raw pyzmq DEALER -> ROUTER + msgpack echo (without and with CURVE)
    vs rpyc (target: beat rpyc);
  - calls/s with 1, 4 and 16 caller threads in one caller process and from 2 caller
    processes (4 threads each), with the CPU each side spends per call
    (targets: >= 30k calls/s with 16 callers and from 2 processes; <= 20 us CPU per
    call on each side, judged with 16 callers);
  - multicall to 4 and 16 nodes p50 vs a raw fan-out over as many DEALERs, and what
    each extra node costs (target: <= 1.5 ms to 16 nodes);
  - echo of 1 MiB p50 vs raw pyzmq with CURVE (hotmesh always encrypts), raw without,
    and rpyc (target <= 1.2x raw with CURVE).
Exit status 1 when a target is missed. Every process started is stopped on exit.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import msgpack
import zmq
from harness import Report, Spread, alternate_latency, percentile, process_cpu
from peers import PAYLOAD, RawCaller, rpyc_function

from hotmesh.testing import LocalCluster

HERE = Path(__file__).resolve().parent
MIB = b"x" * (1 << 20)


class Proc:
    """A process from ``bench/peers.py`` whose first stdout line is read back.

    A server runs in a session of its own, as hotmesh's node processes do
    (``LocalCluster``): with the kernel's autogroup scheduling, a session is a
    scheduling group, and a server sharing its callers' group is scheduled
    differently (a raw pyzmq server there gave ~25% more calls/s with 16
    callers, same run), which would favour the baselines.
    """

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, str(HERE / "peers.py"), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **env} if env else None,
            start_new_session=args[0].endswith("-server"),
            preexec_fn=_die_with_parent,  # out of the bench's session, Ctrl-C no longer reaches it
        )
        self.first = self.readline()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def readline(self) -> str:
        assert self.popen.stdout is not None
        line = self.popen.stdout.readline()
        if not line:
            raise RuntimeError(f"bench process {self.popen.args} ended early")
        return line.strip()

    def ask(self, command: str) -> str:
        assert self.popen.stdin is not None
        self.popen.stdin.write(command + "\n")
        self.popen.stdin.flush()
        return self.readline()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.popen.kill()
        self.popen.wait(5)


class Blocks:
    """A latency variant timed in a ``multicaller`` process, a block at a time."""

    def __init__(self, proc: Proc) -> None:
        self.proc = proc

    def __call__(self) -> None:
        self.block(1)

    def block(self, count: int) -> list[float]:
        samples: list[float] = json.loads(self.proc.ask(f"go {count}"))
        return samples


class FanOut:
    """A raw multicall: one DEALER per raw server, send to all, then collect every reply."""

    def __init__(self, ports: list[int]) -> None:
        self.callers = [RawCaller(port) for port in ports]
        self.poller = zmq.Poller()
        for caller in self.callers:
            self.poller.register(caller.sock, zmq.POLLIN)

    def call(self) -> dict[int, Any]:
        data = msgpack.packb({"id": 1, "m": "len", "a": [PAYLOAD]})
        for caller in self.callers:
            caller.sock.send(data)
        replies: dict[int, Any] = {}
        while len(replies) < len(self.callers):
            for sock, _ in self.poller.poll(5000):
                replies[id(sock)] = msgpack.unpackb(sock.recv())["v"]
        return replies

    def close(self) -> None:
        for caller in self.callers:
            caller.close()


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the bench dies (Linux only)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C


@contextlib.contextmanager
def started(procs: list[Proc]) -> Iterator[list[Proc]]:
    try:
        yield procs
    finally:
        for proc in procs:
            proc.stop()


def p50_spread(
    report: Report, variants: dict[str, Callable[[], object]], count: int, repeats: int
) -> dict[str, Spread]:
    """p50 latency of each variant per repeat (alternating blocks); rows printed."""
    spreads = {label: Spread() for label in variants}
    p99s = {label: Spread() for label in variants}
    for _ in range(repeats):
        samples = alternate_latency(variants, count)
        for label, values in samples.items():
            spreads[label].values.append(percentile(values, 0.5))
            p99s[label].values.append(percentile(values, 0.99))
    for label in variants:
        report.row(
            label,
            f"p50 {spreads[label].text(1e6)} us   p99 {p99s[label].text(1e6)} us",
        )
    return spreads


def ratio(a: Spread, b: Spread) -> Spread:
    """Per-repeat ratio a/b (the repeats were timed side by side)."""
    return Spread([x / y for x, y in zip(a.values, b.values, strict=True)])


def throughput(
    report: Report,
    callers: dict[str, list[Proc]],
    servers: dict[str, int],
    repeats: int,
    seconds: float,
) -> dict[tuple[str, str], tuple[Spread, Spread, Spread]]:
    """calls/s and CPU per call (caller side, server side) per (row, kind)."""
    rows = {
        "1 caller": (1, 1),
        "4 callers": (1, 4),
        "16 callers": (1, 16),
        "2 caller processes x 4": (2, 4),
    }
    out: dict[tuple[str, str], tuple[Spread, Spread, Spread]] = {}
    kinds = list(callers)
    for row, (procs, threads) in rows.items():
        for kind in kinds:
            out[row, kind] = (Spread(), Spread(), Spread())
        for rep in range(repeats):
            shift = rep % len(kinds)
            for kind in kinds[shift:] + kinds[:shift]:
                used = callers[kind][:procs]
                cpu_before = [process_cpu(p.pid) for p in used]
                server_before = process_cpu(servers[kind])
                for proc in used:
                    assert proc.popen.stdin is not None
                    proc.popen.stdin.write(f"go {threads} {seconds}\n")
                    proc.popen.stdin.flush()
                calls = sum(int(proc.readline()) for proc in used)
                caller_cpu = sum(map(process_cpu, (p.pid for p in used))) - sum(cpu_before)
                server_cpu = process_cpu(servers[kind]) - server_before
                rate, cpu_c, cpu_s = out[row, kind]
                rate.values.append(calls / seconds)
                cpu_c.values.append(caller_cpu / calls)
                cpu_s.values.append(server_cpu / calls)
        for kind in kinds:
            rate, cpu_c, cpu_s = out[row, kind]
            report.row(
                f"{row}: {kind}",
                f"{rate.text(fmt='{:.0f}')} calls/s   CPU/call caller "
                f"{cpu_c.text(1e6)} us, server {cpu_s.text(1e6)} us",
            )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one repeat, fewer calls")
    parser.add_argument("--calls", type=int, default=3000, help="round trips per repeat")
    parser.add_argument("--seconds", type=float, default=1.5, help="per throughput run")
    parser.add_argument("--before", type=Path, help="source tree (src/) of a 'before' variant")
    parser.add_argument(
        "--only",
        default="roundtrip,throughput,multicall,echo",
        help="comma-separated parts to run (default: all)",
    )
    args = parser.parse_args()
    parts = set(args.only.split(","))
    signal.signal(signal.SIGTERM, _terminate)
    repeats = 1 if args.quick else 3
    calls = args.calls // 3 if args.quick else args.calls
    seconds = args.seconds / 2 if args.quick else args.seconds
    fanout = 16

    tmp = tempfile.TemporaryDirectory(prefix="hotmesh-bench-rpc-")
    # Keep the bench's registry entries out of the user's state dir.
    os.environ["HOTMESH_STATE_DIR"] = str(Path(tmp.name) / "state")
    report = Report("hotmesh remote calls vs raw pyzmq and rpyc (issue 13 figures)")
    curve_public, curve_secret = zmq.curve_keypair()
    with contextlib.ExitStack() as stack:
        stack.enter_context(tmp)
        cluster = stack.enter_context(
            LocalCluster(fanout, tick=2.0, directory=Path(tmp.name) / "c", start_timeout=60)
        )
        cluster.wait_full_mesh(timeout=60)
        client = cluster.client("bench")
        target = cluster.names[0]
        before_env = {"PYTHONPATH": str(args.before.resolve())} if args.before else None
        if before_env:
            # The same nodes from the other tree (the calling side in this process
            # is this tree's; the caller processes of the throughput rows are theirs).
            old = stack.enter_context(
                LocalCluster(
                    fanout,
                    prefix="old",
                    tick=2.0,
                    env=before_env,
                    directory=Path(tmp.name) / "old",
                    start_timeout=60,
                )
            )
            old.wait_full_mesh(timeout=60)
            old_client = old.client("bench-old")
            old_target = old.names[0]
        raw = stack.enter_context(started([Proc("raw-server")]))[0]
        raw_curve = stack.enter_context(started([Proc("raw-server", curve_secret.decode())]))[0]
        rpyc = stack.enter_context(started([Proc("rpyc-server")]))[0]
        fan = stack.enter_context(started([Proc("raw-server") for _ in range(fanout)]))
        raw_caller = RawCaller(int(raw.first))
        stack.callback(raw_caller.close)
        raw_curve_caller = RawCaller(int(raw_curve.first), curve_public)
        stack.callback(raw_curve_caller.close)
        rpyc_conn, rpyc_len = rpyc_function(int(rpyc.first), "len")
        stack.callback(rpyc_conn.close)
        _, rpyc_echo = rpyc_function(int(rpyc.first), "echo")

        if "roundtrip" in parts:
            print("call round trip, 16-byte argument, one call in flight")
            variants: dict[str, Callable[[], object]] = {
                "hotmesh node.call": lambda: client.call(target, "len", PAYLOAD),
                "raw pyzmq DEALER/ROUTER + msgpack": lambda: raw_caller.call("len", PAYLOAD),
                "raw pyzmq + CURVE (as hotmesh)": lambda: raw_curve_caller.call("len", PAYLOAD),
                "rpyc": lambda: rpyc_len(PAYLOAD),
            }
            if before_env:
                variants["before: node.call"] = lambda: old_client.call(old_target, "len", PAYLOAD)
            rt = p50_spread(report, variants, calls, repeats)
            vs_rpyc = ratio(rt["hotmesh node.call"], rt["rpyc"])
            vs_raw = ratio(rt["hotmesh node.call"], rt["raw pyzmq DEALER/ROUTER + msgpack"])
            report.row("hotmesh / rpyc (p50)", f"{vs_rpyc.text(fmt='{:.2f}')}x")
            report.row("hotmesh / raw pyzmq (p50)", f"{vs_raw.text(fmt='{:.2f}')}x")
            vs_curve = ratio(rt["hotmesh node.call"], rt["raw pyzmq + CURVE (as hotmesh)"])
            report.row("hotmesh / raw pyzmq + CURVE (p50)", f"{vs_curve.text(fmt='{:.2f}')}x")
            report.check("round trip p50 / rpyc p50", vs_rpyc.median, 1.0, "x")

        if "throughput" in parts:
            print("\ncalls/s, one target process, caller processes on this host")
            seed, state = cluster.endpoints[0], str(Path(tmp.name) / "callers")
            hotmesh_args = ["caller", "hotmesh", target, seed, cluster.cookie, state]
            caller_args = {
                "hotmesh": hotmesh_args,
                "rpyc": ["caller", "rpyc", rpyc.first],
                "raw pyzmq": ["caller", "raw", raw.first],
            }
            callers = {
                kind: stack.enter_context(started([Proc(*argv) for _ in range(2)]))
                for kind, argv in caller_args.items()
            }
            servers = {"hotmesh": cluster.node(0).pid, "rpyc": rpyc.pid, "raw pyzmq": raw.pid}
            if before_env:
                old_state = str(Path(tmp.name) / "callers-old")  # a state dir per cluster
                argv = ["caller", "hotmesh", old_target, old.endpoints[0], old.cookie, old_state]
                callers["before"] = stack.enter_context(
                    started([Proc(*argv, env=before_env) for _ in range(2)])
                )
                servers["before"] = old.node(0).pid
            rates = throughput(report, callers, servers, repeats, seconds)
            for row in ("16 callers", "2 caller processes x 4"):
                rate, cpu_c, cpu_s = rates[row, "hotmesh"]
                rpyc_rate = rates[row, "rpyc"][0]
                vs = ratio(rate, rpyc_rate).text(fmt="{:.2f}")
                report.row(f"{row}: hotmesh / rpyc", f"{vs}x")
                report.check(
                    f"calls/s, {row}", rate.median, 30_000, "calls/s", higher_is_better=True
                )
            _, cpu_c, cpu_s = rates["16 callers", "hotmesh"]
            report.check("CPU per call, caller side (16 callers)", cpu_c.median * 1e6, 20, "us")
            report.check("CPU per call, target side (16 callers)", cpu_s.median * 1e6, 20, "us")

        if "multicall" in parts:
            print(f"\nmulticall to 4 and {fanout} nodes, one caller, a process per target")
            fan_all = FanOut([int(p.first) for p in fan])
            stack.callback(fan_all.close)
            fan_4 = FanOut([int(p.first) for p in fan[:4]])
            stack.callback(fan_4.close)
            names = cluster.names[:fanout]
            mcall = client.multicall
            variants = {
                "hotmesh multicall, 4 nodes": lambda: mcall(names[:4], "len", PAYLOAD),
                "raw pyzmq fan-out, 4 DEALERs": fan_4.call,
                f"hotmesh multicall, {fanout} nodes": lambda: mcall(names, "len", PAYLOAD),
                f"raw pyzmq fan-out, {fanout} DEALERs": fan_all.call,
            }
            if before_env:
                # Each tree's calling side too: a multicaller process importing it,
                # against its own tree's nodes.
                mine: tuple[str, LocalCluster, dict[str, str] | None] = ("this tree", cluster, None)
                for label, tree, env in (mine, ("before", old, before_env)):
                    state = str(Path(tmp.name) / f"multicaller-{tree.names[0]}")
                    argv = ["multicaller", tree.cookie, state, tree.endpoints[0], *tree.names]
                    proc = stack.enter_context(started([Proc(*argv, env=env)]))[0]
                    variants[f"{label}: multicall, {fanout} nodes, caller process"] = Blocks(proc)
            mc = p50_spread(report, variants, max(100, calls // 10), repeats)
            hot, raw16 = (
                mc[f"hotmesh multicall, {fanout} nodes"],
                mc[f"raw pyzmq fan-out, {fanout} DEALERs"],
            )
            report.row(
                "hotmesh / raw fan-out, 16 nodes (p50)", f"{ratio(hot, raw16).text(fmt='{:.2f}')}x"
            )
            for label, few, many in (
                ("hotmesh", mc["hotmesh multicall, 4 nodes"], hot),
                ("raw pyzmq", mc["raw pyzmq fan-out, 4 DEALERs"], raw16),
            ):
                slope = Spread(
                    [(b - a) / (fanout - 4) for a, b in zip(few.values, many.values, strict=True)]
                )
                report.row(f"{label}: p50 per extra node (4 -> {fanout})", f"{slope.text(1e6)} us")
            report.check(f"multicall to {fanout} nodes p50", hot.median * 1e3, 1.5, "ms")

        if "echo" in parts:
            print("\necho of 1 MiB (bytes), one call in flight")
            variants = {
                "hotmesh node.call": lambda: client.call(target, "bytes", MIB),
                "raw pyzmq + CURVE": lambda: raw_curve_caller.call("echo", MIB),
                "raw pyzmq": lambda: raw_caller.call("echo", MIB),
                "rpyc": lambda: rpyc_echo(MIB),
            }
            if before_env:
                variants["before: node.call"] = lambda: old_client.call(old_target, "bytes", MIB)
            echo = p50_spread(report, variants, max(60, calls // 25), repeats)
            vs_curve = ratio(echo["hotmesh node.call"], echo["raw pyzmq + CURVE"])
            report.row("hotmesh / raw + CURVE (p50)", f"{vs_curve.text(fmt='{:.2f}')}x")
            vs_plain = ratio(echo["hotmesh node.call"], echo["raw pyzmq"])
            report.row("hotmesh / raw (p50)", f"{vs_plain.text(fmt='{:.2f}')}x")
            report.check("echo 1 MiB p50 / raw + CURVE p50", vs_curve.median, 1.2, "x")
        return report.finish()


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: every process started was stopped", file=sys.stderr)
        raise SystemExit(130) from None
