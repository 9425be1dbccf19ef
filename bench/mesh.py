"""Mesh formation, idle cost and failure detection at 16/64(/128) nodes, beside raw pyzmq.

Run: .venv/bin/python bench/mesh.py [--sizes 16,64] [--repeat 1] [--before SRC]
     [--variants hotmesh,raw] [--starts K]

For each size, every variant starts N processes at the same moment on loopback
(ports chosen up front) and the variants alternate within each repeat:
  - hotmesh: ``hotmesh node`` processes from this tree, every node seeded with
    node 0 (a star; node 0 has no seed), default tick (4 s);
  - before (with ``--before SRC``): the same from another source tree (e.g. an
    export of an older commit), to measure before/after in one run;
  - raw: a pyzmq mesh doing only what hotmesh's sockets do (CURVE ROUTER inbox,
    a CURVE DEALER to every other member, one hello each), given the full list.
Figures: formation (spawn of all N to the last process seeing the N-1 others),
the CPU all N processes used until then (seconds: what a loaded machine does
not blur), idle CPU of the whole mesh (cores, over 10 s after 3 s of calm; and
of libzmq's threads alone: the rest is Python's), RSS
per node, and for hotmesh variants the worker threads each member's pool started
and the time its watchdog judged some job slow until it saw the full mesh (nodes
run through ``pool_probe``), the nodedowns logged while the mesh formed
(churn: drops and redials; in all and by the reason each line gives), the time
from ``kill -9`` of a node, then from ``SIGSTOP`` of another, to the
``nodedown`` an observer node reports. Every source tree is byte-compiled first
(this machine sets PYTHONDONTWRITEBYTECODE, so nodes would compile every module
at each start).
With ``--starts K``, first a node alone is started K times per hotmesh variant
(alternating), and the CPU (every thread) and RSS it has when its app runs are
printed: what each of N nodes started at once pays before it meets anyone.
Targets (issue 10, judged on the median of this tree's variant): 64 nodes form
in <= 5 s and idle at <= 0.1 core in total. Not a test; every process started
is killed on exit.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import os
import queue
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from harness import Report, Spread, process_cpu

_TICK = os.sysconf("SC_CLK_TCK")
_NODEDOWN = re.compile(rb" nodedown \S+(?: \(([^)\n]*)\))?")

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"


def free_endpoints(count: int) -> list[str]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [f"tcp://127.0.0.1:{s.getsockname()[1]}" for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def libzmq_cpu(pid: int) -> float:
    """CPU seconds used so far by the libzmq threads of ``pid`` (named ``ZMQbg/...``)."""
    total = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                if not f.read().startswith("ZMQbg"):
                    continue
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Mesh:
    """N member processes (and, for hotmesh, one observer) of one variant."""

    def __init__(self, variant: str, size: int, src: Path | None, state: Path) -> None:
        self.variant, self.size = variant, size
        self.procs: list[subprocess.Popen[str]] = []
        self.logs = state / "logs"
        self.logs.mkdir(parents=True)
        self.lines: queue.Queue[tuple[int, str, float]] = queue.Queue()
        self.meshed: dict[int, float] = {}
        self.pool: dict[int, tuple[int, float]] = {}  # POOL lines of the members
        endpoints = free_endpoints(size + 1)
        env = dict(os.environ, HM_BENCH_SIZE=str(size + 1), HOTMESH_STATE_DIR=str(state))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src or SRC), str(HERE)) if p)
        cookie = state / "cookie"
        cookie.parent.mkdir(parents=True, exist_ok=True)
        cookie.write_text("bench-mesh-cookie\n")
        cookie.chmod(0o600)
        self.started = time.time()
        for i in range(size + (variant != "raw")):
            if variant == "raw":
                args = [str(HERE / "mesh_peer.py"), str(i), *endpoints[:size]]
                env["HM_BENCH_SIZE"] = str(size)
            else:
                app = "mesh_peer:watch" if i == size else "mesh_peer:meshed"
                args = ["-m", "pool_probe", "node", "--name", f"b{i}", "--listen", endpoints[i]]
                args += ["--cookie-file", str(cookie), "--app", app, "--log-level", "INFO"]
                if i:
                    args += ["--seed", endpoints[0]]
            with open(self.logs / f"{i}.log", "wb") as log:
                proc = subprocess.Popen(
                    [sys.executable, *args],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                    env=env,
                )
            self.procs.append(proc)
            threading.Thread(target=self._read, args=(i, proc), daemon=True).start()

    def _read(self, index: int, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.put((index, line.strip(), time.time()))

    def wait_meshed(self, timeout: float = 300) -> float:
        """Seconds from the spawn to the last MESHED line (and the members' POOL lines)."""
        deadline = time.monotonic() + timeout
        members = self.size if self.variant != "raw" else 0
        while len(self.meshed) < len(self.procs) or len(self.pool) < members:
            try:
                index, line, _ = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"{len(self.meshed)} of {len(self.procs)} saw all") from None
            words = line.split()
            if words[:1] == ["MESHED"]:
                self.meshed[index] = float(words[1])
            elif words[:1] == ["POOL"] and index < self.size:
                self.pool[index] = (int(words[1]), float(words[2]))
        return max(self.meshed.values()) - self.started

    def cpu_seconds(self) -> float:
        """CPU used so far by the N members (user + system, every thread)."""
        return sum(process_cpu(p.pid) for p in self.procs[: self.size])

    def nodedowns(self) -> Counter[str]:
        """``nodedown`` lines the nodes logged so far, by the reason each gives."""
        found: Counter[str] = Counter()
        for path in self.logs.glob("*.log"):
            for reason in _NODEDOWN.findall(path.read_bytes()):
                found[reason.decode(errors="replace") or "no reason logged"] += 1
        return found

    def idle_cores(self, settle: float = 3.0, window: float = 10.0) -> tuple[float, float]:
        """Cores the idle mesh uses in all, and those of libzmq's threads alone."""
        time.sleep(settle)
        pids = [p.pid for p in self.procs[: self.size]]
        before = sum(process_cpu(pid) for pid in pids)
        before_zmq = sum(libzmq_cpu(pid) for pid in pids)
        time.sleep(window)
        total = (sum(process_cpu(pid) for pid in pids) - before) / window
        return total, (sum(libzmq_cpu(pid) for pid in pids) - before_zmq) / window

    def rss_per_node(self) -> float:
        return statistics.mean(rss_mb(p.pid) for p in self.procs[: self.size])

    def down_after(self, index: int, signum: int, timeout: float = 30) -> float:
        """Seconds from sending ``signum`` to node ``index`` to the observer's DOWN line."""
        name = f"b{index}@"
        sent = time.time()
        self.procs[index].send_signal(signum)
        deadline = time.monotonic() + timeout
        while True:
            try:
                who, line, _ = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return float("nan")
            words = line.split()
            # A DOWN line from before the signal is left from the formation.
            down = who == self.size and words[:1] == ["DOWN"] and words[1].startswith(name)
            if down and float(words[2]) >= sent:
                return float(words[2]) - sent

    def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGCONT)
                proc.kill()
        for proc in self.procs:
            proc.wait()


def start_cost(src: Path | None) -> tuple[float, float]:
    """CPU (ms, every thread) and RSS (MB) of one ``hotmesh node`` started alone, read
    inside it when its app runs (the node is up: listening, every layer started)."""
    with tempfile.TemporaryDirectory(prefix="hm-bench-start-") as tmp:
        state = Path(tmp)
        cookie = state / "cookie"
        cookie.write_text("bench-start-cookie\n")
        cookie.chmod(0o600)
        env = dict(os.environ, HOTMESH_STATE_DIR=str(state))
        env["PYTHONPATH"] = os.pathsep.join((str(src or SRC), str(HERE)))
        args = ["-m", "hotmesh", "node", "--name", "alone", "--listen", "tcp://127.0.0.1:0"]
        args += ["--cookie-file", str(cookie), "--app", "mesh_peer:started"]
        done = subprocess.run(
            [sys.executable, *args], capture_output=True, text=True, timeout=60, env=env
        )
    words = next(
        (line.split() for line in done.stdout.splitlines() if line.startswith("STARTED")), []
    )
    if len(words) != 3:
        raise RuntimeError(f"the node did not start: {done.stderr[-500:]}")
    return float(words[1]), int(words[2]) / 1024


@contextlib.contextmanager
def mesh(variant: str, size: int, src: Path | None) -> Iterator[Mesh]:
    with tempfile.TemporaryDirectory(prefix="hm-bench-mesh-") as tmp:
        m = Mesh(variant, size, src, Path(tmp))
        try:
            yield m
        finally:
            m.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="16,64", help='mesh sizes, e.g. 16,64,128 ("": none, with --starts)'
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--before", type=Path, help="source tree (src/) of a 'before' variant")
    parser.add_argument("--form-timeout", type=float, default=120.0, help="seconds to wait")
    parser.add_argument(
        "--variants", help="comma-separated subset of hotmesh,before,raw (default: all given)"
    )
    parser.add_argument(
        "--starts",
        type=int,
        default=0,
        help="also start a node alone this many times per hotmesh variant (CPU and RSS)",
    )
    args = parser.parse_args()
    variants: dict[str, Path | None] = {"hotmesh": None, "raw": None}
    if args.before:
        variants = {"hotmesh": None, "before": args.before.resolve(), "raw": None}
    if args.variants:
        variants = {v: variants[v] for v in args.variants.split(",") if v in variants}
    for tree in (SRC, args.before):
        if tree is not None:
            compileall.compile_dir(tree, quiet=1)
    report = Report("bench/mesh.py: formation, idle cost, failure detection (2-vCPU box)")
    if args.starts:
        alone: dict[tuple[str, str], Spread] = {}
        trees = [v for v in variants if v != "raw"]
        for rep in range(args.starts):
            shift = rep % len(trees)
            for variant in trees[shift:] + trees[:shift]:
                cpu, rss = start_cost(variants[variant])
                alone.setdefault((variant, "start CPU ms"), Spread()).values.append(cpu)
                alone.setdefault((variant, "start RSS MB"), Spread()).values.append(rss)
        print(f"a node started alone, {args.starts} time(s) per variant, alternating:")
        for (variant, key), spread in sorted(alone.items()):
            report.row(f"{variant:<8} {key}", spread.text(fmt="{:.1f}"))
        print()
    for size in (int(s) for s in args.sizes.split(",") if s):
        figures: dict[tuple[str, str], Spread] = {}
        downs: dict[str, list[Counter[str]]] = {}
        order = list(variants)
        for rep in range(args.repeat):
            shift = rep % len(order)
            for variant in order[shift:] + order[:shift]:
                with mesh(variant, size, variants[variant]) as m:
                    try:
                        row = {"formation s": m.wait_meshed(args.form_timeout)}
                    except TimeoutError as exc:
                        late = f"not one full mesh after {args.form_timeout:g} s"
                        print(f"  {size} {variant}: {late}: {exc}")
                        row = {"formation s": float("nan")}
                    row["formation CPU s"] = m.cpu_seconds()
                    if variant != "raw":
                        threads = [t for t, _ in m.pool.values()] or [0]
                        row["pool threads started/node, mean"] = statistics.mean(threads)
                        row["pool threads started/node, max"] = max(threads)
                        eager = [e for _, e in m.pool.values()] or [0.0]
                        row["pool eager ms/node, mean"] = 1000 * statistics.mean(eager)
                        counted = m.nodedowns()
                        downs.setdefault(variant, []).append(counted)
                        row["nodedowns forming"] = counted.total()
                    row["idle cores"], row["idle cores: libzmq threads"] = m.idle_cores()
                    row["RSS MB/node"] = m.rss_per_node()
                    if variant != "raw":
                        row["down after kill -9 ms"] = 1000 * m.down_after(size - 1, signal.SIGKILL)
                        row["down after SIGSTOP ms"] = 1000 * m.down_after(size - 2, signal.SIGSTOP)
                for key, value in row.items():
                    figures.setdefault((variant, key), Spread()).values.append(value)
        for variant, counters in downs.items():  # by reason, 0 in a repeat without it
            for reason in sorted(set().union(*counters)):
                key = f"nodedowns forming: {reason}"
                figures[variant, key] = Spread([float(c[reason]) for c in counters])
        print(f"{size} nodes (+1 observer for hotmesh variants), {args.repeat} repeat(s):")
        for (variant, key), spread in sorted(figures.items()):
            fmt = "{:.0f}" if "ms" in key or "downs" in key else "{:.2f}"
            fmt = "{:.1f}" if "pool" in key else fmt
            fmt = "{:.3f}" if "cores" in key else fmt
            report.row(f"{variant:<8} {key}", spread.text(fmt=fmt))
        if size == 64 and ("hotmesh", "formation s") in figures:
            report.check("64 nodes form", figures["hotmesh", "formation s"].median, 5.0, "s")
            report.check("64 nodes idle", figures["hotmesh", "idle cores"].median, 0.1, "cores")
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
