"""Real packages upgraded live: the new release's own test suite, in the upgraded process.

Run: .venv/bin/python bench/real_packages.py [--only click] [--work DIR] [--hotmesh-src DIR]
     [--steps N [--heap OBJECTS]]
(not in CI: downloads with pip, then about 8 minutes on 2 cores). For each pair of
releases below it fetches both wheels (the installed sources, with their dist-info)
and the new release's sdist (its tests), lays the wheels out as release dirs behind
a symlink, and runs the new release's tests three ways, each in its own process:

- fresh: a process that imports the new release (the reference);
- reload: imports the old release, switches the symlink, ``importlib.reload``s every
  loaded module of the package, last imported first, as a user would without hotmesh;
- hotmesh: ``hotmesh.start(release=...)``, imports the old release, switches the
  symlink, ``hotmesh.deploy.upgrade_node()``; ok or refused (with the step).

Prints passed / failed per way, and whether the live ways match the fresh process.
An upgrade that reports ok must match; a refused one leaves the old code running
(its count is of the old code against the new tests, shown for information).
``--hotmesh-src`` runs the hotmesh way against another checkout's ``src`` (to
measure before a change). Every process started is waited for or killed.

``--steps N`` measures instead of testing: N processes per pair (alternating
with the ``--hotmesh-src`` tree when given, in the same run) import the old
release, optionally build ``--heap`` live objects (an application's heap: the
stale-reference search walks it), and time ``upgrade_node()`` and its steps;
medians are printed with the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Pair:
    """Two releases of one distribution and where the new one's tests are."""

    dist: str
    old: str
    new: str
    packages: tuple[str, ...]  # top-level import names (managed roots)
    tests: str  # in the sdist ("tests"), or "pkg:<path>" inside the installed package
    needs: tuple[str, ...] = ()  # "dist==version" it imports, on sys.path but not managed

    @property
    def key(self) -> str:
        return f"{self.dist}-{self.old}-{self.new}"


PAIRS = [
    Pair("click", "8.1.3", "8.1.7", ("click",), "tests"),
    Pair("more-itertools", "10.1.0", "10.3.0", ("more_itertools",), "tests"),
    Pair("toolz", "0.12.0", "0.12.1", ("toolz", "tlz"), "pkg:toolz/tests"),
    Pair("attrs", "23.1.0", "23.2.0", ("attr", "attrs"), "tests"),
    Pair("click", "7.1.2", "8.0.4", ("click",), "tests"),
    # Extensions found through a registry and entry points, modules added and removed.
    Pair("markdown", "3.4.4", "3.5.2", ("markdown",), "tests"),
    Pair("idna", "3.4", "3.6", ("idna",), "tests"),
    Pair("pyparsing", "3.0.9", "3.1.1", ("pyparsing",), "tests"),
    Pair("cachetools", "5.3.0", "5.3.2", ("cachetools",), "tests"),
    Pair("jinja2", "3.1.2", "3.1.3", ("jinja2",), "tests", needs=("markupsafe==2.1.5",)),
]

CONFIG_FILES = ("conftest.py", "pyproject.toml", "setup.cfg", "tox.ini", "pytest.ini")
MODES = ("fresh", "reload", "hotmesh")
CHILD_TIMEOUT = 900.0


# ------------------------------------------------------------------ preparing
def _pip_download(spec: str, dest: Path, binary: bool) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    kind = "--only-binary" if binary else "--no-binary"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", kind, ":all:", spec],
        cwd=dest,
        check=True,
        timeout=600,
    )
    name, version = spec.split("==")
    stem = name.replace("-", "_").lower()
    for path in sorted(dest.iterdir()):
        norm = path.name.replace("-", "_").lower()
        if norm.startswith(f"{stem}_{version}") and (
            path.suffix == ".whl" if binary else path.name.endswith((".tar.gz", ".zip"))
        ):
            return path
    raise SystemExit(f"pip downloaded nothing matching {spec} into {dest}")


def _release_dir(pair: Pair, version: str, work: Path) -> Path:
    target = work / pair.key / "releases" / version
    if (target / "hotmesh-release.toml").exists():
        return target
    wheel = _pip_download(f"{pair.dist}=={version}", work / "downloads", binary=True)
    shutil.rmtree(target, ignore_errors=True)
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    packages = ", ".join(f'"{p}"' for p in pair.packages)
    (target / "hotmesh-release.toml").write_text(
        f'version = "{version}"\npackages = [{packages}]\n'
    )
    return target


def _needs_dir(pair: Pair, work: Path) -> Path:
    """The distributions the pair imports but does not ship, unpacked (not managed)."""
    target = work / pair.key / "needs"
    if (target / ".done").exists() or not pair.needs:
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for spec in pair.needs:
        with zipfile.ZipFile(_pip_download(spec, work / "downloads", binary=True)) as archive:
            archive.extractall(target)
    (target / ".done").write_text("")
    return target


def _suite_dir(pair: Pair, work: Path) -> Path:
    """The new release's tests and pytest configuration, without its sources."""
    target = work / pair.key / "suite"
    if (target / ".done").exists():
        return target
    sdist = _pip_download(f"{pair.dist}=={pair.new}", work / "downloads", binary=False)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(sdist) as archive:
        archive.extractall(tmp, filter="data")
        (top,) = Path(tmp).iterdir()
        for name in CONFIG_FILES:
            if (top / name).is_file():
                shutil.copy2(top / name, target / name)
        if not pair.tests.startswith("pkg:"):
            shutil.copytree(top / pair.tests, target / pair.tests)
    (target / ".done").write_text("")
    return target


def _repoint(link: Path, target: Path) -> None:
    tmp = link.with_name(f".{link.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(target)
    tmp.replace(link)
    importlib.invalidate_caches()


# ------------------------------------------------------------------ the child
class _Counter:
    """A pytest plugin counting outcomes (a failed setup or teardown counts as failed)."""

    def __init__(self) -> None:
        self.counts = {"passed": 0, "failed": 0, "skipped": 0, "xfailed": 0}
        self.failures: list[str] = []

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call" and report.passed:
            self.counts["xfailed" if hasattr(report, "wasxfail") else "passed"] += 1
        elif report.failed:
            self.counts["failed"] += 1
            self.failures.append(report.nodeid)
        elif report.skipped and report.when in ("setup", "call"):
            self.counts["xfailed" if hasattr(report, "wasxfail") else "skipped"] += 1

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.counts["failed"] += 1
            self.failures.append(f"collect {report.nodeid}")


def _import_packages(pair: Pair) -> None:
    for package in pair.packages:
        importlib.import_module(package)


def _reload_all(pair: Pair) -> str:
    """Reload each module of the package, the last imported first (leaves before users)."""
    names = [
        name
        for name in reversed(list(sys.modules))
        if any(name == p or name.startswith(p + ".") for p in pair.packages)
    ]
    failed = []
    for name in names:
        module = sys.modules.get(name)
        if module is None:
            continue
        try:
            importlib.reload(module)
        except Exception as exc:
            failed.append(f"{name}: {type(exc).__name__}")
    return f"reloaded {len(names) - len(failed)}/{len(names)}" + (
        f", failed {', '.join(failed)}" if failed else ""
    )


def _upgrade(pair: Pair, link: Path, new: Path, state: Path) -> str:
    import hotmesh
    from hotmesh import deploy

    node = hotmesh.start("bench-real", state_dir=state, release=str(link))
    _import_packages(pair)
    _repoint(link, new)
    try:
        report = deploy.upgrade_node()
    except hotmesh.UpgradeError as exc:
        first = exc.reason.splitlines()[0] if exc.reason else ""
        return f"refused at {exc.step}: {first[:160]}"
    finally:
        node.stop()
    added = report.get("added") or {}
    return (
        f"ok, {len(report.loaded)} loaded"
        + (f" ({len(added)} dependents)" if added else "")
        + (f", {len(report.stale)} stale references listed" if report.stale else "")
        + f" in {report.seconds * 1e3:.0f} ms"
    )


def child(mode: str, pair: Pair, work: Path) -> None:
    import pytest

    base = work / pair.key
    old, new, suite = base / "releases" / pair.old, base / "releases" / pair.new, base / "suite"
    run = Path(tempfile.mkdtemp(prefix=f"{mode}-", dir=base))
    link = run / "current"
    _repoint(link, new if mode == "fresh" else old)
    if pair.needs:
        sys.path.append(str(base / "needs"))
    status = ""
    if mode == "hotmesh":
        status = _upgrade(pair, link, new, run / "state")
    else:
        sys.path.insert(0, str(link))
        _import_packages(pair)
        if mode == "reload":
            _repoint(link, new)
            status = _reload_all(pair)
    tests = link / pair.tests[4:] if pair.tests.startswith("pkg:") else suite / pair.tests
    counter = _Counter()
    args = [str(tests), "-q", "-p", "no:cacheprovider", "--rootdir", str(suite)]
    # The suites predate this pytest: its deprecation warnings are not their failures.
    args += ["-W", "ignore::pytest.PytestDeprecationWarning", "--continue-on-collection-errors"]
    os.chdir(suite)
    with contextlib.redirect_stdout(sys.stderr):
        pytest.main(args, plugins=[counter])
    result = {"status": status, **counter.counts, "failures": counter.failures}
    print("RESULT " + json.dumps(result))
    sys.stdout.flush()
    os._exit(0)  # threads the tests or the node left behind must not keep us alive


STEPS = ("scan", "dependents", "switch", "check_stale")


def steps_child(pair: Pair, work: Path, heap: int) -> None:
    """Time upgrade_node() and its steps (no tests run); prints one RESULT line."""
    import hotmesh
    from hotmesh import deploy
    from hotmesh.deploy import _job

    base = work / pair.key
    run = Path(tempfile.mkdtemp(prefix="steps-", dir=base))
    link = run / "current"
    _repoint(link, base / "releases" / pair.old)
    if pair.needs:
        sys.path.append(str(base / "needs"))
    times = dict.fromkeys(STEPS, 0.0)

    def timed(name: str) -> None:
        method = getattr(_job.UpgradeJob, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                times[name] += time.perf_counter() - started

        setattr(_job.UpgradeJob, name, wrapper)

    for name in STEPS:
        timed(name)
    node = hotmesh.start("bench-steps", state_dir=run / "state", release=str(link))
    _import_packages(pair)
    live = [{"i": i} for i in range(heap)]
    _repoint(link, base / "releases" / pair.new)
    started = time.perf_counter()
    report = deploy.upgrade_node()
    total = time.perf_counter() - started
    node.stop()
    del live
    print("RESULT " + json.dumps({"upgrade": total, **times, "loaded": len(report.loaded)}))
    sys.stdout.flush()
    os._exit(0)


def measure_steps(pairs: list[Pair], work: Path, runs: int, heap: int, before: str | None) -> None:
    import statistics

    trees = {"before": before, "after": None} if before else {"this tree": None}
    print(f"upgrade_node() and its steps, ms (median of {runs}; heap {heap:,} live objects)")
    for pair in pairs:
        for version in (pair.old, pair.new):
            _release_dir(pair, version, work)
        _needs_dir(pair, work)
        rows: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        loads = []
        for _ in range(runs):
            for name, src in trees.items():
                env = dict(os.environ, HOTMESH_STATE_DIR=str(work / "hotmesh-state"))
                if src:
                    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
                command = [sys.executable, __file__, "--child", "steps", "--pair", pair.key]
                command += ["--work", str(work), "--heap", str(heap)]
                out = subprocess.run(
                    command, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT
                ).stdout
                line = next(x for x in reversed(out.splitlines()) if x.startswith("RESULT "))
                rows[name].append(json.loads(line[7:]))
                loads.append(os.getloadavg()[0])
        for name, results in rows.items():
            cells = "  ".join(
                f"{key} {statistics.median(r[key] for r in results) * 1e3:6.1f}"
                for key in ("upgrade", *STEPS)
            )
            print(f"  {pair.key:28} {name:9} {cells}  ({results[0]['loaded']:.0f} loaded)")
        print(f"  load average {min(loads):.1f}-{max(loads):.1f}")


# ----------------------------------------------------------------- the parent
def _run_child(mode: str, pair: Pair, work: Path, hotmesh_src: str | None) -> dict[str, Any]:
    env = dict(os.environ, HOTMESH_STATE_DIR=str(work / "hotmesh-state"))
    if hotmesh_src and mode == "hotmesh":
        env["PYTHONPATH"] = os.pathsep.join([hotmesh_src, env.get("PYTHONPATH", "")])
    log = work / pair.key / f"{mode}.log"
    command = [sys.executable, __file__, "--child", mode, "--pair", pair.key, "--work", str(work)]
    with open(log, "w") as err:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, env=env, text=True)
        try:
            out, _ = proc.communicate(timeout=CHILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return {"status": "timeout", "passed": 0, "failed": 0}
    for line in reversed(out.splitlines()):
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            return result
    return {"status": f"crashed (exit {proc.returncode}, see {log})", "passed": 0, "failed": 0}


def _cell(result: dict[str, Any]) -> str:
    return f"{result['passed']} / {result['failed']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "hotmesh-real"))
    parser.add_argument("--only", action="append", help="dist name or pair key (repeatable)")
    parser.add_argument("--hotmesh-src", help="a hotmesh src dir for the hotmesh way")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--steps", type=int, help="time upgrade_node in N runs per tree")
    parser.add_argument("--heap", type=int, default=0, help="live objects built for --steps")
    parser.add_argument("--child", choices=(*MODES, "steps"), help=argparse.SUPPRESS)
    parser.add_argument("--pair", help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = Path(args.work).resolve()
    if args.child:
        pair = next(p for p in PAIRS if p.key == args.pair)
        if args.child == "steps":
            steps_child(pair, work, args.heap)
        child(args.child, pair, work)
        return
    pairs = [p for p in PAIRS if not args.only or p.dist in args.only or p.key in args.only]
    if args.steps:
        measure_steps(pairs, work, args.steps, args.heap, args.hotmesh_src)
        return
    modes = args.modes.split(",")
    print(f"work dir {work}; python {sys.version.split()[0]}; load {os.getloadavg()[0]:.2f}")
    rows = []
    for pair in pairs:
        for version in (pair.old, pair.new):
            _release_dir(pair, version, work)
        _needs_dir(pair, work)
        _suite_dir(pair, work)
        results = {}
        for mode in modes:
            started = time.monotonic()
            results[mode] = _run_child(mode, pair, work, args.hotmesh_src)
            took = time.monotonic() - started
            status = results[mode].get("status") or ""
            print(f"  {pair.key:28} {mode:8} {_cell(results[mode]):>12}  {took:5.1f} s  {status}")
        rows.append((pair, results))
    print()
    print("| package, old → new | fresh process | after upgrade_node() | importlib.reload loop |")
    print("|---|---|---|---|")
    for pair, results in rows:
        cells = [f"{pair.dist} {pair.old} → {pair.new}"]
        fresh = results.get("fresh")
        for mode in ("fresh", "hotmesh", "reload"):
            result = results.get(mode)
            if result is None:
                cells.append("-")
                continue
            text = _cell(result)
            if mode == "hotmesh":
                status = result.get("status", "")
                verdict = "ok" if status.startswith("ok") else status.split(":")[0]
                text = f"{verdict}, {text}"
            if mode != "fresh" and fresh is not None:
                same = (result["passed"], result["failed"]) == (fresh["passed"], fresh["failed"])
                text += " (= fresh)" if same else " (differs)"
            cells.append(text)
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
