"""What opening a console costs, each beside a baseline measured in the same run.

Run: .venv/bin/python bench/console_session.py [--rounds 5] [--output-mib 100]
Starts node processes (LocalCluster) on 127.0.0.1; drives real terminals with pexpect.

Prints, with min/median/max over ``--rounds`` alternating runs and the load average:

- attach to first prompt: ``hotmesh attach NODE`` in a pseudo-terminal until its
  prompt shows, beside ``python -m ptpython`` until its own prompt (a local REPL
  of the same front end: the floor for any attach);
- the stall the first session causes on the node's own service: a service
  thread that sleeps 1 ms in a loop records its longest wait beyond that, in a
  window with no console, in the window where the first session opens, and in
  the window of a second session, on a fresh node each round;
- with ``--output-mib N``: N MiB printed by a statement through ``hotmesh attach``
  in a pseudo-terminal and through ``hotmesh eval`` into a pipe, byte-exact, with
  the rate of each.
"""

from __future__ import annotations

import argparse
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


def attach_to_prompt(cluster: LocalCluster, rounds: int) -> None:
    env = cluster.env(TERM="xterm")
    attach = [sys.executable, "-m", "hotmesh", "attach", cluster.names[0], "--no-history"]
    local = [sys.executable, "-m", "ptpython"]
    ours: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    for _ in range(rounds):  # alternating, so both see the same machine
        ours.append(time_to_prompt(attach, r"\[1\]>", env))
        theirs.append(time_to_prompt(local, r">>>", env))
    for index, what in ((0, "wall"), (1, "CPU")):
        mine = [sample[index] * 1e3 for sample in ours]
        base = [sample[index] * 1e3 for sample in theirs]
        print(f"attach to first prompt, {what:4s} (ms):   {spread(mine)}")
        print(f"local ptpython to prompt, {what:4s} (ms): {spread(base)}")
        ratio = statistics.median(mine) / statistics.median(base)
        print(f"  ratio of medians:                   {ratio:.2f}x")


def stall(tmp: Path, rounds: int) -> None:
    (tmp / "stall_meter.py").write_text(METER)
    rows: dict[str, list[float]] = {"no console": [], "first session": [], "second session": []}
    p99: dict[str, list[float]] = {name: [] for name in rows}
    env = {"PYTHONPATH": os.pathsep.join([str(tmp), os.environ.get("PYTHONPATH", "")])}
    for round_ in range(rounds):
        directory = tmp / f"stall{round_}"
        with LocalCluster(
            1,
            prefix=f"stall{round_}",
            tick=2.0,
            app="stall_meter:start",
            env=env,
            directory=directory,
        ) as cluster:
            conn = Connection(cluster.endpoints[0], cluster.cookie)
            try:
                time.sleep(1.0)  # the node settles after its start
                _window(conn)
                for name in rows:
                    client = None
                    if name != "no console":
                        client = ConsoleClient.connect(cluster.endpoints[0], cluster.cookie)
                        client.open()
                    time.sleep(2.0)  # the window: the session opens, completion warms up
                    longest, high = _window(conn)
                    rows[name].append(longest)
                    p99[name].append(high)
                    if client is not None:
                        client.close()
            finally:
                conn.close()
    for name in rows:
        label = f"{name} (ms)"
        print(f"service stall, {label:22s} longest: {spread(rows[name])}")
        print(f"{'':37s}p99:     {spread(p99[name])}")


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
    args = parser.parse_args()
    print(load())
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ.setdefault("HOTMESH_STATE_DIR", str(tmp / "state"))
        with LocalCluster(1, prefix="bench", tick=2.0, directory=tmp / "main") as cluster:
            attach_to_prompt(cluster, args.rounds)
            if args.output_mib:
                output(cluster, args.output_mib)
        stall(tmp, args.rounds)
    print(load())


if __name__ == "__main__":
    main()
