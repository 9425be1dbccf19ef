"""Rolling upgrade of demo nodes under client load: wall time, and what it costs a client.

Run: .venv/bin/python bench/upgrade.py [--quick | --target] [--before SRC]
(about 4 min; --quick: 4 and 8 nodes, one round; --target: only 16 nodes all at once;
--before: also run every row's rounds with the nodes and the rollout driver on another
tree's ``src/``, alternating with this tree round by round)
For 4, 8 and 16 demo nodes (real processes on 127.0.0.1, a fresh cluster per row),
each serving the demo service to a few client connections that send continuously,
upgrades v1 -> v2 (a state-format change migrated by code_change) one node at a time
(batch=1) and all at once (batch=N), driven by deploy.rolling_upgrade from a
node in a process of its own (the clients, whose latencies are measured in this
process, do not share a GIL with it). Prints the rollout's wall time and the
clients' request latency p50/p99 while the upgrade runs (replies received from the
driver's start until ``rolling_upgrade`` returns; the driver's check of every node's
version after it is not counted) against the same clients' latency just before it
(the baseline); the ratio is what an upgrade costs a client. Source trees are
byte-compiled first (this machine sets PYTHONDONTWRITEBYTECODE: a node would otherwise
compile every module an upgrade imports, as a node installed by pip never does).
Ratios are given per round as min/median/max over the rounds (each round compares a
client with itself a moment before, on the same loaded machine). Issue 13's target: with
16 nodes upgraded all at once, the clients' p99 during the upgrade is at most 2x their
p99 before (judged on the median round; exit status 1 when missed, or when a row lost or
duplicated a request).
Every process started is stopped on exit, Ctrl-C and SIGTERM included.
"""

from __future__ import annotations

import argparse
import compileall
import json
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

# Node registry and state under a temp dir: the bench never touches the user's nodes.
_TMP = Path(tempfile.mkdtemp(prefix="hotmesh-bench-upgrade-"))
os.environ["HOTMESH_STATE_DIR"] = str(_TMP / "state")

from harness import Spread, load_average  # noqa: E402

from hotmesh.demo.cluster import DemoCluster  # noqa: E402

BASELINE_REPLIES = 2_000  # replies measured before the upgrade, per row
P99_TARGET = 2.0  # issue 13: p99 during an all-at-once upgrade of 16 nodes <= 2x before


@dataclass
class Round:
    """One rollout on a fresh cluster: its wall time and the latencies around it."""

    seconds: float
    per_node_ms: float  # mean time of one node's upgrade call
    before: list[float]  # request latencies (s) just before the rollout
    during: list[float]  # request latencies (s) of replies received while it ran
    clean: bool  # every node on v2, traffic exactly once and in order, nothing dropped


@dataclass
class Row:
    """Rounds of one (nodes, batch) configuration, pooled."""

    nodes: int
    batch: int
    rounds: list[Round]
    variant: str = ""

    @property
    def seconds(self) -> float:
        return statistics.median(r.seconds for r in self.rounds)

    @property
    def per_node_ms(self) -> float:
        return statistics.median(r.per_node_ms for r in self.rounds)

    @property
    def before(self) -> list[float]:
        return [x for r in self.rounds for x in r.before]

    @property
    def during(self) -> list[float]:
        return [x for r in self.rounds for x in r.during]

    @property
    def clean(self) -> bool:
        return all(r.clean for r in self.rounds)

    def ratios(self, q: float) -> Spread:
        """Per round: percentile ``q`` during the rollout / the same just before."""
        return Spread(
            [percentile_ms(r.during, q) / percentile_ms(r.before, q) for r in self.rounds]
        )


def percentile_ms(samples: list[float], q: float) -> float:
    """Percentile ``q`` (0..1) of ``samples`` (seconds) in milliseconds."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))] * 1e3


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``predicate`` until true or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout}s")
        time.sleep(0.01)


def measure(
    size: int, batch: int, connections: int, interval: float, tag: str, src: Path | None = None
) -> Round:
    """Start ``size`` demo nodes under load, roll v2 through them in batches of ``batch``.

    With ``src``, the nodes and the rollout driver import hotmesh from that tree.
    """
    env = {"PYTHONPATH": str(src.resolve())} if src is not None else {}
    demo = DemoCluster(
        size,
        connections=connections,
        prefix=f"bench{tag}-",
        tick=3.0,  # 2 cores and up to 16 busy nodes: no false nodedown from a slow heartbeat
        interval=interval,
        directory=_TMP / f"demo-{tag}",
    )
    demo.cluster.extra_env.update(env)
    try:
        demo.start(timeout=60)
        traffic = demo.traffic
        assert traffic is not None
        demo.ship("v2")
        cluster = demo.cluster
        peers = str(Path(__file__).parent / "peers.py")
        state = str(_TMP / f"driver-{tag}")
        seed_and_names = [cluster.endpoints[0], *demo.names]
        driver = subprocess.Popen(
            [sys.executable, peers, "rollout", str(batch), cluster.cookie, state, *seed_and_names],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
        )
        try:
            assert driver.stdin is not None and driver.stdout is not None
            if driver.stdout.readline().strip() != "ready":
                raise RuntimeError("the rollout driver did not start")
            # Warm up (connections, service, cache-warm paths), then the baseline.
            wait_for(lambda: traffic.snapshot().replies >= 500, 30, "warm-up replies")
            start_index = len(traffic.snapshot().latencies)
            wait_for(
                lambda: len(traffic.snapshot().latencies) >= start_index + BASELINE_REPLIES,
                60,
                "baseline replies",
            )
            upgrade_index = len(traffic.snapshot().latencies)
            driver.stdin.write("go\n")
            driver.stdin.flush()
            done = driver.stdout.readline()
            latencies = traffic.snapshot().latencies
            line = driver.stdout.readline() if done.strip() == "done" else done
            if not line:
                raise RuntimeError("the rollout driver ended without a result")
            result = json.loads(line)
        finally:
            driver.kill()
            driver.wait(5)
        if result["interrupted"]:
            raise KeyboardInterrupt
        versions = result["versions"]
        report = demo.stop_traffic()
        on_v2 = len(versions) == size and all(v.startswith("v2+") for v in versions.values())
        return Round(
            result["seconds"],
            sum(result["per_node"]) / size * 1e3,
            latencies[start_index:upgrade_index],
            latencies[upgrade_index:],
            on_v2 and report.ok and report.formats["ERR"] == 0,
        )
    finally:
        demo.stop()


def table(rows: list[Row], header: bool = True) -> str:
    """The results as a fixed-width table (latency columns: before -> during, ratio)."""
    head = (
        f"{'variant':<7} {'nodes':>5} {'batch':>5} {'rollout':>9} {'per node':>9}  "
        f"{'p50 before -> during':>22} {'ratio':>5}  {'p99 before -> during':>22} {'ratio':>5}  "
        f"{'max during':>10}  {'samples':>12}  clean  "
        f"{'p50 ratio per round':>19}  {'p99 ratio per round':>19}"
    )
    lines = [head, "-" * len(head)] if header else []
    for r in rows:
        before, during = r.before, r.during
        p50 = percentile_ms(before, 0.5), percentile_ms(during, 0.5)
        p99 = percentile_ms(before, 0.99), percentile_ms(during, 0.99)
        lines.append(
            f"{r.variant or 'this':<7} {r.nodes:>5} {r.batch:>5} "
            f"{r.seconds:>7.3f} s {r.per_node_ms:>6.0f} ms  "
            f"{p50[0]:>7.2f} -> {p50[1]:>7.2f} ms {p50[1] / p50[0]:>5.2f}  "
            f"{p99[0]:>7.2f} -> {p99[1]:>7.2f} ms {p99[1] / p99[0]:>5.2f}  "
            f"{max(during, default=0.0) * 1e3:>7.2f} ms  {len(before):>6}/{len(during):<5}  "
            f"{'yes' if r.clean else 'NO ':<5}  "
            f"{r.ratios(0.5).text(fmt='{:.2f}'):>19}  {r.ratios(0.99).text(fmt='{:.2f}'):>19}"
        )
    return "\n".join(lines)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="4 and 8 nodes, one round")
    parser.add_argument(
        "--target", action="store_true", help="only 16 nodes upgraded all at once (the target row)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="fresh clusters per row")
    parser.add_argument(
        "--before",
        type=Path,
        help="source tree (its src/, or the tree holding it) of a 'before' variant",
    )
    parser.add_argument("--connections", type=int, default=2, help="client connections per node")
    parser.add_argument(
        "--interval", type=float, default=0.01, help="pause between a reply and the next request"
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _terminate)
    # The driver node's nodeup/nodedown lines would bury the table.
    logging.getLogger("hotmesh").setLevel(logging.WARNING)
    sizes = [4, 8] if args.quick else [16] if args.target else [4, 8, 16]
    rounds = 1 if args.quick else args.rounds
    print(load_average(), "at start")
    print(
        f"rolling upgrade v1 -> v2 of the demo service, {args.connections} connections per node, "
        f"a request every {args.interval * 1e3:g} ms per connection after each reply, "
        f"{rounds} round(s) per row on fresh clusters (rollout: median; latencies: pooled)"
    )
    print(table([]))
    rows: list[Row] = []
    variants: dict[str, Path | None] = {"this": None}
    if args.before is not None:
        # A tree's src/ or the tree itself (an export of ``git archive REV src``):
        # given the tree, PYTHONPATH would not reach its hotmesh, and the nodes
        # would quietly import this tree's.
        if not (args.before / "hotmesh").is_dir() and (args.before / "src" / "hotmesh").is_dir():
            args.before = args.before / "src"
        if not (args.before / "hotmesh").is_dir():
            parser.error(f"--before {args.before}: no hotmesh package there")
        variants["before"] = args.before
    # This machine sets PYTHONDONTWRITEBYTECODE: without bytecode on disk, every node
    # would compile each module it imports, and an upgrade imports the code server's
    # parts a start does not load (compiling them is most of their cost).
    for tree in (Path(__file__).resolve().parent.parent / "src", args.before):
        if tree is not None:
            compileall.compile_dir(tree, quiet=1)
    started = time.monotonic()
    try:
        for size in sizes:
            for batch in (size,) if args.target else (1, size):
                row = {label: Row(size, batch, [], label) for label in variants}
                order = list(variants)
                for i in range(rounds):
                    # Alternate which variant goes first, round by round.
                    for label in order[i % len(order) :] + order[: i % len(order)]:
                        tag = f"{size}x{batch}r{i}{label}"
                        row[label].rounds.append(
                            measure(
                                size, batch, args.connections, args.interval, tag, variants[label]
                            )
                        )
                rows += row.values()
                print(table(list(row.values()), header=False), flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted: every node process was stopped", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(_TMP, ignore_errors=True)
    print(f"\n{table(rows)}\n({time.monotonic() - started:.0f} s in all)")
    print(load_average(), "at end")
    ok = all(r.clean for r in rows)
    for r in rows:
        if r.nodes == 16 and r.batch == 16:
            ratio = r.ratios(0.99).median
            met = ratio <= P99_TARGET
            if r.variant == "this":
                ok = ok and met
            print(
                f"target ({r.variant}): p99 during / before, 16 nodes all at once: {ratio:.2f}x "
                f"(median round; target <= {P99_TARGET:g}x): {'met' if met else 'MISSED'}"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
