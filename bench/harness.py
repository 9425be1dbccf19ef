"""Shared pieces of the benchmarks: alternating blocks, repeats, spreads, targets (no I/O
beyond /proc reads and printing).

Every figure is measured as several *variants* (hotmesh and its baselines) timed in
alternating blocks inside one repeat, and the repeat is run three times; a figure is
printed as min / median / max over the repeats, and a target is judged on the median
(of the ratio when the target is a ratio). Load on a shared machine hits every variant
of a block alike, so same-run ratios are what to trust; the load average is printed.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

_TICK = os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    """The 1/5/15-minute load average, for the printout."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


def percentile(samples: Sequence[float], q: float) -> float:
    """Percentile ``q`` (0..1) of ``samples`` (nearest rank)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, every thread, ended ones included) used by ``pid``."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def self_cpu() -> float:
    """CPU seconds used by this process (every thread, ended ones included)."""
    return time.process_time()


def timed(fn: Callable[[], object], count: int) -> list[float]:
    """Seconds each of ``count`` calls of ``fn`` took.

    ``fn`` may time itself elsewhere: given a ``block`` attribute (a function of
    ``count``), that gives the seconds (e.g. calls timed in another process).
    """
    block: Callable[[int], list[float]] | None = getattr(fn, "block", None)
    if block is not None:
        return block(count)
    samples = []
    clock = time.perf_counter
    for _ in range(count):
        start = clock()
        fn()
        samples.append(clock() - start)
    return samples


def alternate_latency(
    variants: dict[str, Callable[[], object]], count: int, *, blocks: int = 10, warmup: int = 200
) -> dict[str, list[float]]:
    """Per-call latencies of each variant, timed in ``blocks`` alternating blocks."""
    for fn in variants.values():
        timed(fn, warmup)
    out: dict[str, list[float]] = {label: [] for label in variants}
    per_block = max(1, count // blocks)
    order = list(variants)
    for block in range(blocks):
        # Rotate who goes first, so no variant always follows the same one.
        shift = block % len(order)
        for label in order[shift:] + order[:shift]:
            out[label] += timed(variants[label], per_block)
    return out


@dataclass
class Spread:
    """One figure over the repeats."""

    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def text(self, scale: float = 1.0, fmt: str = "{:.1f}") -> str:
        lo, mid, hi = min(self.values), self.median, max(self.values)
        return "/".join(fmt.format(v * scale) for v in (lo, mid, hi))


@dataclass
class Target:
    """One target of the issue's table and whether the run met it."""

    figure: str
    value: float
    limit: float
    unit: str
    higher_is_better: bool = False

    @property
    def met(self) -> bool:
        return self.value >= self.limit if self.higher_is_better else self.value <= self.limit

    def text(self) -> str:
        op = ">=" if self.higher_is_better else "<="
        verdict = "met" if self.met else "MISSED"
        value = f"{self.value:.3g} {self.unit}"
        return f"  {verdict:<6} {self.figure}: {value} (target {op} {self.limit:g})"


class Report:
    """Rows printed as they come, and the targets judged at the end."""

    def __init__(self, title: str) -> None:
        self.targets: list[Target] = []
        print(title)
        print(load_average(), "at start")
        print("figures: min/median/max over repeats; ratios and targets on the median\n")

    def row(self, label: str, text: str) -> None:
        print(f"  {label:<44} {text}", flush=True)

    def check(
        self, figure: str, value: float, limit: float, unit: str, *, higher_is_better: bool = False
    ) -> None:
        self.targets.append(Target(figure, value, limit, unit, higher_is_better))

    def finish(self) -> int:
        """Print the verdicts and load; the exit status is 1 when a target was missed."""
        print()
        print(load_average(), "at end")
        print("targets:")
        for target in self.targets:
            print(target.text())
        missed = [t for t in self.targets if not t.met]
        print(f"{len(self.targets) - len(missed)} of {len(self.targets)} targets met")
        return 1 if missed else 0
