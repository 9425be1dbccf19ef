"""Benchmarks of the code server, each against a baseline measured in the same run.

Run: .venv/bin/python bench/code.py [--only scaling] [--before SRC]
     (about 60 s; scaling alone ~40 s; --before SRC: the scaling workers of another source
     tree (its src/) too, in the same alternating blocks, for before/after from one run)
Prints: qualified call through a facade vs a plain module; load_file of a
generated 1,000-line module vs compile+exec of the same source; atomic_load of
10 modules vs 10 x compile+exec; soft_purge with 1,000 asyncio tasks and 50
threads vs walking the same tasks with Task.get_stack(); a load whose
__code_change__ converts 50,000 kept sessions while 4 threads call the module
(load time, longest call a serving thread saw, the conversion alone); then the scaling of a
load with the number of managed modules: load_file of a 1-line module with 0,
50 and 200 other managed modules loaded (each variant in its own process,
alternating blocks, three repeats), and the first load in a node managing a
137-module app against compiling and executing the changed module.
Exits 1 when a scaling target is missed: 200 modules within 1.5x of none, and
the first load in the large app at most 20 ms beyond compile+exec.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
from collections.abc import Callable, Iterator
from pathlib import Path

import hotmesh.code as code


def best_ns(stmt: str, setup: str, number: int = 1_000_000, repeat: int = 7) -> float:
    """Best ns per execution of ``stmt`` minus an empty loop."""
    raw = min(timeit.repeat(stmt, setup, number=number, repeat=repeat))
    empty = min(timeit.repeat("pass", setup, number=number, repeat=repeat))
    return (raw - empty) / number * 1e9


def median_ms(action: Callable[[], object], prepare: Callable[[], object], runs: int) -> float:
    """Median ms of ``action`` over ``runs``, calling ``prepare`` (untimed) before each."""
    samples = []
    for _ in range(runs):
        prepare()
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def generated_module(lines: int, tag: int, uses: str | None = None) -> str:
    """A module of about ``lines`` lines: functions, a class, constants.

    With ``uses`` (a managed module name), it imports that module and every
    function calls it, so the cross-reference check has real work to do.
    """
    out = [f"TAG = {tag}", "import math", ""]
    call = "math.sqrt(abs(x))"
    if uses is not None:
        package, _, name = uses.rpartition(".")
        out.insert(0, f"from {package} import {name}")
        call = f"{name}.f0(x)"
    i = 0
    while len(out) < lines - 8:
        out += [f"def f{i}(x, y={i}):", f"    z = x * y + {call}", "    return z", ""]
        i += 1
    out += ["class Thing:", "    def __init__(self, v):", "        self.v = v", ""]
    out += ["    def twice(self):", "        return self.v * 2", ""]
    return "\n".join(out) + "\n"


def bench_call(tmp: Path, managed: str) -> None:
    (tmp / "hm_plain_mod.py").write_text("def f():\n    return 1\n")
    (tmp / managed / "callee.py").write_text("def f():\n    return 1\n")
    importlib.invalidate_caches()
    plain = best_ns("m.f()", "import hm_plain_mod as m")
    fac = best_ns("m.f()", f"import {managed}.callee as m")
    print(
        f"qualified call m.f(): plain module {plain:6.1f} ns, managed facade {fac:6.1f} ns, "
        f"ratio {fac / plain:4.2f} (target < 2)"
    )
    reads = "m.f; m.f; m.f; m.f; m.f; m.f; m.f; m.f; m.f; m.f"
    plain_attr = best_ns(reads, "import hm_plain_mod as m") / 10
    fac_attr = best_ns(reads, f"import {managed}.callee as m") / 10
    print(
        f"attribute read m.f:   plain module {plain_attr:6.1f} ns, managed facade "
        f"{fac_attr:6.1f} ns, ratio {fac_attr / plain_attr:4.2f}"
    )


def bench_load(tmp: Path, managed: str) -> None:
    mod = f"{managed}.big"
    path = tmp / managed / "big.py"
    counter = iter(range(10_000))
    path.write_text(generated_module(1000, 0))
    importlib.invalidate_caches()
    importlib.import_module(mod)

    def rewrite() -> None:
        code.purge(mod)
        path.write_text(generated_module(1000, next(counter)))

    load = median_ms(lambda: code.load_file(mod), rewrite, 15)
    source = generated_module(1000, 1)

    def baseline() -> None:
        exec(compile(source, "big.py", "exec"), {"__name__": "x"})

    base = median_ms(baseline, lambda: None, 15)
    print(
        f"load_file 1,000-line module: {load:6.2f} ms; compile+exec of the same source "
        f"{base:6.2f} ms; ratio {load / base:4.2f}"
    )


def bench_atomic(tmp: Path, managed: str) -> None:
    variants = (
        (15, "15-line modules", False),
        (1000, "1,000-line modules", False),
        (1000, "1,000-line modules", True),
    )
    for lines, label, linked in variants:
        names = [f"{managed}.m{label[0]}{int(linked)}{i}" for i in range(10)]
        uses = {n: (names[i - 1] if linked and i else None) for i, n in enumerate(names)}
        paths = [tmp / managed / (n.rsplit(".", 1)[1] + ".py") for n in names]
        counter = iter(range(10_000))
        for n, p in zip(names, paths, strict=True):
            p.write_text(generated_module(lines, 0, uses[n]))
        importlib.invalidate_caches()
        for n in names:
            importlib.import_module(n)

        def rewrite(
            paths: list[Path] = paths,
            names: list[str] = names,
            lines: int = lines,
            counter: Iterator[int] = counter,
            uses: dict[str, str | None] = uses,
        ) -> None:
            tag = next(counter)
            for n, p in zip(names, paths, strict=True):
                code.purge(n)
                p.write_text(generated_module(lines, tag, uses[n]))

        took = median_ms(lambda names=names: code.atomic_load(names), rewrite, 9)
        sources = [generated_module(lines, 1) for _ in names]
        label += " (each importing the previous; xref parses all)" if linked else ""

        def baseline(sources: list[str] = sources) -> None:
            for s in sources:
                exec(compile(s, "m.py", "exec"), {"__name__": "x"})

        base = median_ms(baseline, lambda: None, 9)
        print(
            f"atomic_load 10 x {label}: {took:6.2f} ms; 10 x compile+exec "
            f"{base:6.2f} ms; ratio {took / base:4.2f}"
        )


def bench_soft_purge(tmp: Path, managed: str) -> None:
    mod = f"{managed}.svc"
    path = tmp / managed / "svc.py"
    body = (
        "import asyncio, threading\n"
        "async def leaf(ev):\n    await ev.wait()\n"
        "async def mid(ev):\n    await leaf(ev)\n"
        "async def handler(ev):\n    await mid(ev)\n"
        "def worker(ev):\n    ev.wait()\n"
    )
    path.write_text(body + "V = 1\n")
    importlib.invalidate_caches()
    svc = importlib.import_module(mod)
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    stop_async = asyncio.run_coroutine_threadsafe(_make_event(), loop).result()
    lingering = asyncio.run_coroutine_threadsafe(_spawn(svc.handler, stop_async, 1), loop).result()
    path.write_text(body + "V = 2\n")
    code.load_file(mod)  # the one task above now runs old code
    # The other tasks run stable code: the scan walks their chains all the same.
    tasks = asyncio.run_coroutine_threadsafe(_spawn(_handler, stop_async, 999), loop).result()
    stop_threads = threading.Event()
    # Threads parked in stable code (their stacks are walked all the same).
    threads = [threading.Thread(target=stop_threads.wait) for _ in range(50)]
    for t in threads:
        t.start()
    time.sleep(0.2)  # benchmark only: let the tasks reach their await
    refused = median_ms(lambda: code.soft_purge(mod), lambda: None, 21)
    assert code.soft_purge(mod) is False

    def naive() -> None:
        for task in asyncio.all_tasks(loop):
            task.get_stack()

    base = median_ms(naive, lambda: None, 21)
    print(
        f"soft_purge scan, 1,000 tasks (depth 3) + 50 threads, 1 task in old code: "
        f"{refused:6.2f} ms; Task.get_stack() over the same tasks {base:6.2f} ms; "
        f"ratio {refused / base:4.2f}"
    )
    loop.call_soon_threadsafe(lingering[0].cancel)
    while not lingering[0].done():
        time.sleep(0.001)
    clean = median_ms(lambda: code.soft_purge(mod), lambda: _reload(path, body, mod), 5)
    print(f"soft_purge that drops the old version (same load): {clean:6.2f} ms")
    stop_threads.set()
    for t in threads:
        t.join()
    loop.call_soon_threadsafe(stop_async.set)
    time.sleep(0.05)
    loop.call_soon_threadsafe(loop.stop)
    runner.join()
    loop.close()
    del tasks


_reloads = iter(range(3, 10_000))


def _reload(path: Path, body: str, mod: str) -> None:
    assert code.soft_purge(mod)
    path.write_text(body + f"V = {next(_reloads)}\n")
    code.load_file(mod)


async def _leaf(ev: asyncio.Event) -> None:
    await ev.wait()


async def _mid(ev: asyncio.Event) -> None:
    await _leaf(ev)


async def _handler(ev: asyncio.Event) -> None:
    await _mid(ev)


async def _make_event() -> asyncio.Event:
    return asyncio.Event()


async def _spawn(handler, ev, count):  # type: ignore[no-untyped-def]
    return [asyncio.ensure_future(handler(ev)) for _ in range(count)]


CARRY_V1 = """
import hotmesh.code
SESSIONS = hotmesh.code.keep("SESSIONS", dict)
def open_all(count):
    for key in range(count):
        SESSIONS[key] = ["user%d" % key, 0]
def touch(key):
    SESSIONS[key][1] += 1
"""

CARRY_V2 = """
import hotmesh.code
SESSIONS = hotmesh.code.keep("SESSIONS", dict)
class Session:
    __slots__ = ("user", "hits")
    def __init__(self, user, hits):
        self.user, self.hits = user, hits
def touch(key):
    SESSIONS[key].hits += 1
def convert(table):
    return {k: Session(*v) for k, v in table.items() if isinstance(v, list)}
def __code_change__(old_namespace, old_version):
    SESSIONS.update(convert(SESSIONS))
"""


def bench_carry_over(tmp: Path, managed: str) -> None:
    """A load converting 50,000 kept sessions under suspension while 4 threads call the module."""
    count = 50_000
    mod = f"{managed}.sessions"
    path = tmp / managed / "sessions.py"
    loads, pauses, converts = [], [], []
    path.write_text(CARRY_V1)
    importlib.invalidate_caches()
    sessions = importlib.import_module(mod)
    for run in range(5):
        code.purge(mod)
        path.write_text(CARRY_V1 + f"RUN = {run}\n")
        code.load_file(mod)
        sessions.SESSIONS.clear()
        sessions.open_all(count)
        stop = threading.Event()
        worst = [0.0] * 4

        def serve(i: int, stop: threading.Event = stop, worst: list[float] = worst) -> None:
            key = i
            while not stop.is_set():
                key = (key + 7919) % count
                start = time.perf_counter()
                sessions.touch(key)
                worst[i] = max(worst[i], time.perf_counter() - start)

        threads = [threading.Thread(target=serve, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.05)  # benchmark only: traffic running before the load
        code.purge(mod)
        path.write_text(CARRY_V2 + f"RUN = {run}\n")
        start = time.perf_counter()
        code.load_file(mod)
        loads.append((time.perf_counter() - start) * 1e3)
        time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join()
        pauses.append(max(worst) * 1e3)
        table = {k: [f"user{k}", 0] for k in range(count)}
        start = time.perf_counter()
        sessions.convert(table)
        converts.append((time.perf_counter() - start) * 1e3)
    print(
        f"load with __code_change__ converting {count:,} sessions under 4 serving threads: "
        f"load min/median/max {spread(loads)} ms; longest call seen by a serving thread "
        f"{spread(pauses)} ms; the conversion alone, no traffic {spread(converts)} ms"
    )


# ------------------------------------------------------------------ scaling
# Each variant runs in its own process, so that the number of managed modules
# in the node is exactly the variant's; variants alternate in blocks.

SCALING_COUNTS = (0, 50, 200)
SCALING_LOADS = 25
APP_MODULES = 137


def other_module(package: str, i: int) -> str:
    """About 80 lines that import the 1-line module and their neighbours, like app code."""
    out = ['"""Generated module."""', "import math", "from . import tiny"]
    if i > 0:
        out.append(f"from .m{i - 1} import f0 as prev_f0")
    if i > 1:
        out.append(f"from {package} import m{(i * 7) % i}")
    out += [f"CONST_{i} = {i}", ""]
    for j in range(16):
        call = f"prev_f0(x) + {j}" if i > 0 else f"math.sqrt(abs(x)) + {j}"
        if i > 1 and j % 4 == 0:
            call = f"m{(i * 7) % i}.f{j}(x)"
        out += [f"def f{j}(x):", f"    return tiny.X + {call}", ""]
    out += [f"class Thing{i}:", "    def method(self):", "        return tiny.X", ""]
    return "\n".join(out) + "\n"


def scaling_worker(tmp: Path, others: int) -> list[float]:
    """ms of each load_file of a 1-line module, with ``others`` managed modules loaded."""
    package = "hm_scale_pkg"
    (tmp / package).mkdir()
    (tmp / package / "__init__.py").write_text("")
    tiny = tmp / package / "tiny.py"
    tiny.write_text("X = 0\n")
    for i in range(others):
        (tmp / package / f"m{i}.py").write_text(other_module(package, i))
    sys.path.insert(0, str(tmp))
    code.add_root(package)
    importlib.import_module(f"{package}.tiny")
    for i in range(others):
        importlib.import_module(f"{package}.m{i}")
    assert len(code.loaded()) == others + 2
    samples = []
    for n in range(1, SCALING_LOADS + 1):
        code.purge(f"{package}.tiny")
        tiny.write_text(f"X = {n}\n")
        start = time.perf_counter()
        code.load_file(f"{package}.tiny")
        samples.append((time.perf_counter() - start) * 1e3)
    return samples


def app_module(name: str, siblings: list[str], index: int) -> str:
    """About 120 lines of app code: imports of the shared util and of two siblings."""
    out = ['"""Generated app module."""', "import math", "from app import util"]
    out.append("from app.util import helper, Base")
    for sib in siblings:
        out.append(f"import {sib}")
    out += [f"LIMIT = {index}", ""]
    for j in range(22):
        if siblings and j % 5 == 0:
            call = f"{siblings[j % len(siblings)]}.f{j}(x)"
        else:
            call = f"util.scale(x, {j}) + helper(x)"
        out += [f"def f{j}(x):", f"    return {call} + math.floor(x)", ""]
    out += ["class Thing(Base):", "    def method(self):", "        return util.scale(1, 2)", ""]
    return "\n".join(out) + "\n"


def util_module(tag: int, extra: bool) -> str:
    out = ['"""The module every app module uses."""', f"TAG = {tag}", ""]
    out += ["def scale(x, k):", f"    return x * k + {tag}", ""]
    out += ["def helper(x):", "    return x + 1", ""]
    out += ["class Base:", "    pass", ""]
    for j in range(60):
        out += [f"def util{j}(x):", f"    return x * {j} + TAG", ""]
    if extra:
        out += ["def unused_helper(x):", "    return x", ""]
    return "\n".join(out) + "\n"


def app_worker(tmp: Path, removes_name: bool) -> dict[str, float]:
    """The first load in a node managing a 137-module app, and compile+exec of its source."""
    root = tmp / "app"
    names = []
    for sub in ("core", "web", "db"):
        (root / sub).mkdir(parents=True)
        (root / sub / "__init__.py").write_text("")
        names.append(f"app.{sub}")
    (root / "__init__.py").write_text("")
    (root / "util.py").write_text(util_module(0, True))
    modules = [f"app.{sub}.mod{i}" for sub in ("core", "web", "db") for i in range(44)]
    names += modules
    for index, mod in enumerate(modules):
        siblings = [
            modules[(index * 5 + 1) % len(modules)],
            modules[(index * 3 + 2) % len(modules)],
        ]
        siblings = [s for s in siblings if s != mod]
        path = root.joinpath(*mod.split(".")[1:]).with_suffix(".py")
        path.write_text(app_module(mod, siblings, index))
    sys.path.insert(0, str(tmp))
    code.add_root("app")
    importlib.import_module("app.util")
    for mod in names:
        importlib.import_module(mod)
    assert len(code.loaded()) == APP_MODULES, len(code.loaded())
    source = util_module(1, not removes_name)
    (root / "util.py").write_text(source)
    start = time.perf_counter()
    code.load_file("app.util")
    first = (time.perf_counter() - start) * 1e3
    base = []
    for _ in range(9):
        start = time.perf_counter()
        exec(compile(source, str(root / "util.py"), "exec"), {"__name__": "app.util"})
        base.append((time.perf_counter() - start) * 1e3)
    return {"first": first, "compile_exec": statistics.median(base)}


def run_worker(args: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmpdir:
        if args[0] == "scaling":
            result: object = scaling_worker(Path(tmpdir), int(args[1]))
        else:
            result = app_worker(Path(tmpdir), args[1] == "removes")
    print(json.dumps(result))


def in_process(*args: str, src: str | None = None) -> object:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, __file__, "--worker", *args],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def spread(values: list[float]) -> str:
    return f"{min(values):6.2f} / {statistics.median(values):6.2f} / {max(values):6.2f}"


def bench_scaling(before: str | None = None) -> bool:
    """Load cost against the number of managed modules; True when the targets are met.

    With ``before`` (another tree's src/), its workers run in the same blocks,
    and its figures are printed first; the targets are judged on this tree.
    """
    trees: dict[str, str | None] = {"before": before, "after": None} if before else {"": None}
    samples: dict[tuple[str, int], list[float]] = {
        (t, n): [] for t in trees for n in SCALING_COUNTS
    }
    labels = ("keeps names", "removes a name")
    apps: dict[tuple[str, str], list[dict[str, float]]] = {
        (t, label): [] for t in trees for label in labels
    }
    started = os.getloadavg()
    for _block in range(3):
        for tree, src in trees.items():
            for n in SCALING_COUNTS:
                samples[tree, n] += in_process("scaling", str(n), src=src)  # type: ignore[arg-type]
        for _twice in range(2):  # one sample per process: two per block
            for tree, src in trees.items():
                for label, arg in (("keeps names", "keeps"), ("removes a name", "removes")):
                    apps[tree, label].append(in_process("app", arg, src=src))  # type: ignore[arg-type]
    ended = os.getloadavg()
    print(
        f"load_file of a 1-line module with N other managed modules loaded "
        f"({SCALING_LOADS} loads x 3 alternating blocks, one process per block; "
        f"load average {started[0]:.2f} -> {ended[0]:.2f}):"
    )
    ok = True
    for tree in trees:
        base = statistics.median(samples[tree, 0])
        for n in SCALING_COUNTS:
            ratio = statistics.median(samples[tree, n]) / base
            name = f"{tree} " if tree else ""
            print(
                f"  {name}N={n:4d}: min/median/max {spread(samples[tree, n])} ms, "
                f"ratio to N=0 {ratio:5.2f}"
            )
            if tree != "before" and n == max(SCALING_COUNTS) and ratio > 1.5:
                ok = False
    print(f"  target: N={max(SCALING_COUNTS)} within 1.5x of N=0: {'met' if ok else 'MISSED'}")
    print(f"first load_file in a node managing a {APP_MODULES}-module app (app.util, 6 processes):")
    for (tree, label), runs in apps.items():
        first = [r["first"] for r in runs]
        extra = [r["first"] - r["compile_exec"] for r in runs]
        met = statistics.median(extra) <= 20.0
        if tree != "before":
            ok = ok and met
        name = f"{tree} " if tree else ""
        print(
            f"  {name}{label:15s}: first load min/median/max {spread(first)} ms; beyond "
            f"compile+exec of the new util {spread(extra)} ms (target <= 20: "
            f"{'met' if met else 'MISSED'})"
        )
    return ok


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        run_worker(sys.argv[2:])
        return
    args = sys.argv[1:]
    before = None
    if "--before" in args:
        at = args.index("--before")
        before = str(Path(args[at + 1]).resolve())
        del args[at : at + 2]
    if args != ["--only", "scaling"]:
        run_classic()
    print(f"Python {sys.version.split()[0]}")
    sys.exit(0 if bench_scaling(before) else 1)


def run_classic() -> None:
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        managed = "hm_bench_pkg"
        (tmp / managed).mkdir()
        (tmp / managed / "__init__.py").write_text("")
        sys.path.insert(0, str(tmp))
        code.add_root(managed)
        print(f"Python {sys.version.split()[0]}")
        bench_call(tmp, managed)
        bench_load(tmp, managed)
        bench_atomic(tmp, managed)
        bench_soft_purge(tmp, managed)
        bench_carry_over(tmp, managed)


if __name__ == "__main__":
    main()
