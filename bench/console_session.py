"""What opening a console costs, each beside a baseline measured in the same run.

Run: .venv/bin/python bench/console_session.py [--rounds 5] [--output-mib 100] [--before SRC]
Starts node processes (LocalCluster) on 127.0.0.1; drives real terminals with pexpect.
With ``--before SRC`` (the src/ of another source tree, e.g. an export of an older
commit) the attach client and the stall rows are measured for it too, alternating
with this tree's, for before/after figures from one run. Both trees are byte-compiled
first: with PYTHONDONTWRITEBYTECODE set (this machine sets it) a tree without
bytecode is compiled at every start, which a client start would pay.

Prints, with min/median/max over ``--rounds`` alternating runs and the load average:

- attach to first prompt: ``hotmesh attach NODE`` in a pseudo-terminal until its
  prompt shows, beside ``python -m ptpython`` until its own prompt (a local REPL
  of the same front end: the floor for any attach);
- the stall the first session causes on the node's own service: a service
  thread that sleeps 1 ms in a loop records its longest wait beyond that, in a
  window with no console, in the window where the first session opens, in the
  window of its first completion (a Tab on a name), of its first completion that
  needs jedi (``import o``: loads jedi) and in the window of a second session,
  on a fresh node each round;
- with ``--output-mib N``: N MiB printed by a statement through ``hotmesh attach``
  in a pseudo-terminal and through ``hotmesh eval`` into a pipe, byte-exact, with
  the rate of each.
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pexpect

from hotmesh._console.client import ConsoleClient
from hotmesh._mesh.client import Connection
from hotmesh._rpc import client_calls
from hotmesh.testing import LocalCluster

METER = '''
import threading, time

GAPS = []


def _meter():
    while True:
        start = time.perf_counter()
        time.sleep(0.001)
        GAPS.append(time.perf_counter() - start - 0.001)


def start(node):
    threading.Thread(target=_meter, daemon=True, name="stall-meter").start()


def window():
    """The longest and the 99th-percentile extra wait since the last call (ms)."""
    gaps = sorted(GAPS)
    GAPS.clear()
    if not gaps:
        return 0.0, 0.0
    return gaps[-1] * 1e3, gaps[int(len(gaps) * 0.99)] * 1e3
'''


def spread(samples: list[float]) -> str:
    return (
        f"min {min(samples):7.1f}  median {statistics.median(samples):7.1f}  "
        f"max {max(samples):7.1f}"
    )


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def time_to_prompt(argv: list[str], prompt: str, env: dict[str, str]) -> tuple[float, float]:
    """Seconds from spawning ``argv`` in a terminal until ``prompt`` shows, and the
    CPU seconds the program used in all (a measure a loaded machine does not blur)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    child = pexpect.spawn(argv[0], argv[1:], env=env, dimensions=(40, 120), timeout=30)
    try:
        child.expect(prompt)
        elapsed = time.perf_counter() - start
        child.sendcontrol("d")
    finally:
        child.close(force=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def with_src(env: dict[str, str], src: Path | None) -> dict[str, str]:
    """``env`` with ``src`` first on PYTHONPATH (None: this tree, as installed)."""
    if src is None:
        return env
    rest = env.get("PYTHONPATH", "")
    return {**env, "PYTHONPATH": os.pathsep.join(p for p in (str(src), rest) if p)}


def attach_to_prompt(cluster: LocalCluster, rounds: int, before: Path | None) -> None:
    env = cluster.env(TERM="xterm")
    attach = [sys.executable, "-m", "hotmesh", "attach", cluster.names[0], "--no-history"]
    runs: dict[str, tuple[list[str], str, dict[str, str]]] = {
        "attach to first prompt": (attach, r"\[1\]>", env)
    }
    if before is not None:
        runs["attach, before"] = (attach, r"\[1\]>", with_src(env, before))
    runs["local ptpython to prompt"] = ([sys.executable, "-m", "ptpython"], r">>>", env)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for _ in range(rounds):  # alternating, so all see the same machine
        for name, (argv, prompt, run_env) in runs.items():
            samples[name].append(time_to_prompt(argv, prompt, run_env))
    base_name = "local ptpython to prompt"
    for index, what in ((0, "wall"), (1, "CPU")):
        base = [sample[index] * 1e3 for sample in samples[base_name]]
        for name in runs:
            values = [sample[index] * 1e3 for sample in samples[name]]
            label = f"{name}, {what} (ms):"
            ratio = statistics.median(values) / statistics.median(base)
            print(f"{label:36s} {spread(values)}  ({ratio:.2f}x ptpython)")


ROWS = (
    "no console",
    "first session",
    "first completion",
    "first jedi completion",
    "second session",
)
TAB = "first Tab answered in"
JEDI_TAB = "first jedi Tab answered in"


def stall(tmp: Path, rounds: int, before: Path | None) -> None:
    (tmp / "stall_meter.py").write_text(METER)
    variants: dict[str, Path | None] = {"": None}
    if before is not None:
        variants["before: "] = before
    rows: dict[str, list[float]] = {
        v + name: [] for v in variants for name in (*ROWS, TAB, JEDI_TAB)
    }
    p99: dict[str, list[float]] = {name: [] for name in rows}
    for round_ in range(rounds):
        for variant, src in variants.items():  # alternating, on a fresh node each
            env = with_src(
                {"PYTHONPATH": os.pathsep.join([str(tmp), os.environ.get("PYTHONPATH", "")])}, src
            )
            directory = tmp / f"stall{round_}{'b' if src else ''}"
            with LocalCluster(
                1,
                prefix=f"stall{round_}{'b' if src else ''}",
                tick=2.0,
                app="stall_meter:start",
                env=env,
                directory=directory,
            ) as cluster:
                for name, (longest, high) in _stall_windows(cluster).items():
                    rows[variant + name].append(longest)
                    p99[variant + name].append(high)
    for name in rows:
        label = f"{name} (ms)"
        if name.endswith((TAB, JEDI_TAB)):
            print(f"{label:45s}          {spread(rows[name])}")
            continue
        print(f"service stall, {label:30s} longest: {spread(rows[name])}")
        print(f"{'':45s}p99:     {spread(p99[name])}")


def _stall_windows(cluster: LocalCluster) -> dict[str, tuple[float, float]]:
    """The stall in each window of ``ROWS`` on a fresh node (2 s each)."""
    found: dict[str, tuple[float, float]] = {}
    conn = Connection(cluster.endpoints[0], cluster.cookie)
    client = None
    try:
        time.sleep(1.0)  # the node settles after its start
        _window(conn)
        time.sleep(2.0)
        found["no console"] = _window(conn)
        client = ConsoleClient.connect(cluster.endpoints[0], cluster.cookie)
        client.open()
        time.sleep(2.0)
        found["first session"] = _window(conn)
        started = time.perf_counter()
        client.complete("nod", 3, timeout=30.0)  # the first Tab: a name (node, nodes)
        tab = (time.perf_counter() - started) * 1e3
        time.sleep(2.0)
        found["first completion"] = _window(conn)
        found[TAB] = (tab, tab)
        started = time.perf_counter()
        client.complete("import o", 8, timeout=30.0)  # one jedi answers: module names
        tab = (time.perf_counter() - started) * 1e3
        time.sleep(2.0)
        found["first jedi completion"] = _window(conn)
        found[JEDI_TAB] = (tab, tab)
        second = ConsoleClient.connect(cluster.endpoints[0], cluster.cookie)
        second.open()
        time.sleep(2.0)
        found["second session"] = _window(conn)
        second.close()
    finally:
        if client is not None:
            client.close()
        conn.close()
    return found


def _window(conn: Connection) -> tuple[float, float]:
    longest, high = client_calls.call(conn, "stall_meter.window", timeout=10)
    return float(longest), float(high)


def output(cluster: LocalCluster, mib: int) -> None:
    lines = mib * 1024
    code = (
        "import sys\n"
        f"for i in range({lines}): sys.stdout.write(f'{{i:09d}} ' + 'x' * 1013 + '\\n')\n"
        "print('END' + '-MARK')\n"
    )
    expected = b"".join(b"%09d " % i + b"x" * 1013 + b"\n" for i in range(lines))
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "hotmesh", "eval", cluster.names[0], code],
        env=cluster.env(),
        capture_output=True,
        timeout=3600,
    )
    eval_s = time.perf_counter() - start
    ok = done.returncode == 0 and done.stdout == expected + b"END-MARK\n"
    print(f"eval {mib} MiB into a pipe:       {mib / eval_s:7.1f} MiB/s  byte-exact: {ok}")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "hotmesh", "attach", cluster.names[0], "--no-history"],
        env=cluster.env(TERM="xterm"),
        dimensions=(40, 120),
        timeout=60,
    )
    received = bytearray()
    try:
        child.expect(rb"\[1\]>")
        start = time.perf_counter()
        child.send("\x1b[200~" + code + "\x1b[201~\r")
        while not re.search(rb"END-MARK.*\[2\]", received[-8192:], re.S):
            received += child.read_nonblocking(1 << 20, timeout=60)
        attach_s = time.perf_counter() - start
    finally:
        child.close(force=True)
    text = re.sub(rb"\x1b\[[0-9;? ]*[A-Za-z]", b"", bytes(received)).replace(b"\r\n", b"\n")
    got = b"".join(line + b"\n" for line in text.split(b"\n") if re.match(rb"\d{9} x", line))
    exact = got == expected
    print(f"attach {mib} MiB to a terminal:   {mib / attach_s:7.1f} MiB/s  byte-exact: {exact}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output-mib", type=int, default=0)
    parser.add_argument("--before", type=Path, help="src/ of a 'before' source tree")
    parser.add_argument("--skip-stall", action="store_true", help="attach figures only")
    args = parser.parse_args()
    before = args.before.resolve() if args.before else None
    for tree in (Path(__file__).resolve().parents[1] / "src", before):
        if tree is not None:
            compileall.compile_dir(tree, quiet=1)
    print(load())
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ.setdefault("HOTMESH_STATE_DIR", str(tmp / "state"))
        with LocalCluster(1, prefix="bench", tick=2.0, directory=tmp / "main") as cluster:
            attach_to_prompt(cluster, args.rounds, before)
            if args.output_mib:
                output(cluster, args.output_mib)
        if not args.skip_stall:
            stall(tmp, args.rounds, before)
    print(load())


if __name__ == "__main__":
    main()
