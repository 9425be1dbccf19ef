"""Thread wake-ups per call on the target, by thread, beside raw pyzmq and rpyc servers.

Run: .venv/bin/python bench/wakeups.py [--before SRC]   (about 1 min)
(--before: also a node and callers from another source tree, e.g. an export of an
older commit's src/, in the same run)

Counts the context switches (voluntary/involuntary, from /proc/PID/task/*/status)
each server process makes per call while one caller process calls it from 1 and
from 16 threads, and the CPU it spends per call. Unlike latency and calls/s, the
number of wake-ups per call barely moves with load on a shared machine, so it is
the figure to judge a change of the call path by (issue 13: the time per call
goes into thread hand-offs). Informational: no target, exit status 0.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from harness import load_average, process_cpu
from rpc import Proc

from hotmesh.testing import LocalCluster


def switches(pid: int, names: dict[int, str]) -> Counter[str]:
    """Context switches so far of each thread role of ``pid`` ("role v" / "role n")."""
    out: Counter[str] = Counter()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                status = f.read().splitlines()
        except OSError:
            continue  # the thread ended
        role = names.get(int(tid), comm).rstrip("-0123456789")
        for line in status:
            if line.startswith("voluntary_ctxt_switches"):
                out[f"{role} v"] += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches"):
                out[f"{role} n"] += int(line.split()[1])
    return out


def thread_names() -> dict[int, str]:
    """Shipped to the target node: its threads' native ids and names."""
    import threading

    return {t.native_id or 0: t.name for t in threading.enumerate()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="source tree (src/) of a 'before' variant")
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="hotmesh-bench-wakeups-")
    os.environ["HOTMESH_STATE_DIR"] = str(Path(tmp.name) / "state")
    print("wake-ups per call on the target process, by thread (voluntary/involuntary)")
    print(load_average(), "at start")
    seconds = 2.0
    with contextlib.ExitStack() as stack:
        stack.enter_context(tmp)
        cluster = stack.enter_context(LocalCluster(1, tick=2.0, directory=Path(tmp.name) / "c"))
        cluster.wait_full_mesh(timeout=30)
        target = cluster.names[0]
        client = cluster.client("bench-wakeups")
        raw, rpyc = Proc("raw-server"), Proc("rpyc-server")
        callers: dict[str, Proc] = {}
        try:
            state = str(Path(tmp.name) / "callers")
            callers["hotmesh"] = Proc(
                "caller", "hotmesh", target, cluster.endpoints[0], cluster.cookie, state
            )
            callers["raw pyzmq"] = Proc("caller", "raw", raw.first)
            callers["rpyc"] = Proc("caller", "rpyc", rpyc.first)
            servers = {"hotmesh": cluster.node(0).pid, "raw pyzmq": raw.pid, "rpyc": rpyc.pid}
            if args.before:
                env = {"PYTHONPATH": str(args.before.resolve())}
                old = stack.enter_context(
                    LocalCluster(1, prefix="old", tick=2.0, env=env, directory=Path(tmp.name) / "o")
                )
                old.wait_full_mesh(timeout=30)
                callers["before"] = Proc(
                    "caller",
                    "hotmesh",
                    old.names[0],
                    old.endpoints[0],
                    old.cookie,
                    str(Path(tmp.name) / "callers-old"),
                    env=env,
                )
                servers["before"] = old.node(0).pid
            for proc in callers.values():
                proc.ask("go 16 0.3")  # warm: lines, connections, worker threads
            names: dict[str, dict[int, Any]] = {k: {} for k in servers}
            names["hotmesh"] = client.call(target, thread_names)
            if args.before:
                names["before"] = old.client("bench-wakeups-old").call(old.names[0], thread_names)
            for threads in (1, 16):
                for kind, proc in callers.items():
                    pid = servers[kind]
                    before, cpu = switches(pid, names[kind]), process_cpu(pid)
                    calls = int(proc.ask(f"go {threads} {seconds}"))
                    after, cpu = switches(pid, names[kind]), process_cpu(pid) - cpu
                    delta = after - before
                    roles = sorted({key[:-2] for key in delta})
                    parts = [
                        f"{role} {delta[role + ' v'] / calls:.2f}/{delta[role + ' n'] / calls:.2f}"
                        for role in roles
                        if (delta[role + " v"] + delta[role + " n"]) / calls >= 0.05
                    ]
                    total = sum(delta.values()) / calls
                    print(
                        f"  {threads:>2} caller(s) {kind:<10} {total:5.2f} per call "
                        f"(CPU {cpu / calls * 1e6:5.1f} us): {', '.join(parts)}",
                        flush=True,
                    )
        finally:
            for proc in [raw, rpyc, *callers.values()]:
                proc.stop()
    print(load_average(), "at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
