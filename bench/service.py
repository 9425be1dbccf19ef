"""Service migration and service calls, each beside an in-process baseline from the same run.

Run: .venv/bin/python bench/service.py [--services 1000]   (about 30 s)

Figures (three repeats, variants alternating inside each repeat; min/median/max):
  - 1,000 services on one callback module migrated by ``service.migrate`` right
    after a new version is loaded (what ``deploy.upgrade_node`` runs after the code
    switch; the load itself is not timed) -- issue 13's target: <= 20 ms;
    beside the floor (1,000 ``code_change`` calls in one plain loop) and 1,000 idle
    threads woken one by one (a Condition each) and waited for;
  - ``service_call`` round trip p50 beside a bare queue + Future hop to a thread.
Exit status 1 when the target is missed or a service did not change code.
"""

from __future__ import annotations

import argparse
import importlib
import queue
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from harness import Report, Spread, alternate_latency, percentile

from hotmesh import code, service

MIGRATE_TARGET_MS = 20.0

SOURCE = """
__vsn__ = "{vsn}"

def init(n):
    return {{"n": n, "vsn": "{vsn}"}}

def handle_call(msg, state):
    return state["n"], state

def handle_cast(msg, state):
    return state

def code_change(old_vsn, state):
    return {{**state, "vsn": "{vsn}"}}
"""


class Sleepers:
    """Idle threads, each waiting on its own Condition; ``wake_all`` wakes them one by one."""

    def __init__(self, count: int) -> None:
        self.slots = [(threading.Condition(), []) for _ in range(count)]
        self.stopping = False
        self.threads = [
            threading.Thread(target=self._run, args=(slot,), daemon=True) for slot in self.slots
        ]
        for thread in self.threads:
            thread.start()

    def _run(self, slot: tuple[threading.Condition, list[Future[None] | None]]) -> None:
        cond, box = slot
        while True:
            with cond:
                while not box:
                    cond.wait()
                future = box.pop()
            if future is None:
                return
            future.set_result(None)

    def wake_all(self) -> None:
        futures: list[Future[None]] = []
        for cond, box in self.slots:
            future: Future[None] = Future()
            with cond:
                box.append(future)
                cond.notify()
            futures.append(future)
        for future in futures:
            future.result(5)

    def stop(self) -> None:
        for cond, box in self.slots:
            with cond:
                box.append(None)
                cond.notify()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    count = args.services
    report = Report(f"hotmesh services: migration of {count} services and service_call")

    tmp = tempfile.TemporaryDirectory(prefix="hotmesh-bench-service-")
    root = Path(tmp.name)
    sys.path.insert(0, str(root))
    code.add_root(str(root))
    module = f"hm_bench_svc_{uuid.uuid4().hex[:8]}"
    path = root / f"{module}.py"
    path.write_text(SOURCE.format(vsn=1))
    importlib.invalidate_caches()
    importlib.import_module(module)
    names = [f"bench-{i}" for i in range(count)]
    started = time.perf_counter()
    for i, name in enumerate(names):
        service.start_service(name, module, i)
    print(f"started {count} services in {time.perf_counter() - started:.2f} s\n")
    sleepers = Sleepers(count)
    ok = True
    try:
        version = [1]

        def migrate() -> None:
            nonlocal ok
            report_ = service.migrate([module])
            moved = sum(1 for m in report_ if m.ok)
            if moved != count:
                ok = False
                print(f"  only {moved} of {count} services changed code", file=sys.stderr)

        def load_next() -> None:
            version[0] += 1
            path.write_text(SOURCE.format(vsn=version[0]))
            if not code.soft_purge(module):
                raise RuntimeError("old code still in use after migrate")
            code.load_file(module)

        states = [{"n": i, "vsn": "1"} for i in range(count)]

        def floor() -> None:
            fn = code.current_version(module).namespace["code_change"]  # type: ignore[union-attr]
            for i, state in enumerate(states):
                states[i] = fn("1", state)

        timings = {
            f"service.migrate of {count} services": Spread(),
            f"floor: {count} code_change calls in one loop": Spread(),
            f"{count} idle threads woken one by one": Spread(),
        }
        actions: list[Callable[[], None]] = [migrate, floor, sleepers.wake_all]
        print(f"{count} services migrated after a load (the load is not timed)")
        for rep in range(args.repeats):
            load_next()
            shift = rep % len(actions)
            labels = list(timings)
            for index in [*range(shift, len(actions)), *range(shift)]:
                begin = time.perf_counter()
                actions[index]()
                timings[labels[index]].values.append(time.perf_counter() - begin)
        for label, spread in timings.items():
            report.row(label, f"{spread.text(1e3, '{:.2f}')} ms")
        labels = list(timings)
        per = timings[labels[0]].median / count
        report.row("per service (median)", f"{per * 1e6:.1f} us")
        report.check(
            f"{count} services migrated in one upgrade",
            timings[labels[0]].median * 1e3,
            MIGRATE_TARGET_MS,
            "ms",
        )

        print("\nservice_call round trip (one caller thread)")
        jobs: queue.SimpleQueue[Future[int]] = queue.SimpleQueue()

        def echo_thread() -> None:
            while True:
                future = jobs.get()
                future.set_result(1)

        threading.Thread(target=echo_thread, daemon=True).start()

        def bare() -> None:
            future: Future[int] = Future()
            jobs.put(future)
            future.result(5)

        p50 = {"service_call": Spread(), "queue + Future hop to a thread": Spread()}
        for _ in range(args.repeats):
            samples = alternate_latency(
                {
                    "service_call": lambda: service.service_call(names[0], "n"),
                    "queue + Future hop to a thread": bare,
                },
                3000,
            )
            for label, values in samples.items():
                p50[label].values.append(percentile(values, 0.5))
        for label, spread in p50.items():
            report.row(label, f"p50 {spread.text(1e6)} us")
    finally:
        sleepers.stop()
        for name in names:
            service.stop_service(name)
        sys.path.remove(str(root))
        tmp.cleanup()
    status = report.finish()
    return status if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
