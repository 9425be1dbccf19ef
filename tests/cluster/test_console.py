"""The console server in real node processes, through the real transport: output
routing, interrupt, input, completion, exit, audit, code shipping, lost nodes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hotmesh._console.client import ConsoleClient
from hotmesh._errors import SessionClosed
from hotmesh.testing import LocalCluster
from tests.cluster.clusters import local_cluster
from tests.consoles import in_background, run, started
from tests.waiting import wait_until

pytestmark = pytest.mark.cluster

Attach = Callable[..., ConsoleClient]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Two node processes, fully meshed, shared by this module's tests."""
    with local_cluster(tmp_path_factory, 2, prefix="con", tick=2.0) as cluster:
        yield cluster


@pytest.fixture
def attach(pair: LocalCluster) -> Iterator[Attach]:
    clients: list[ConsoleClient] = []

    def attach(index: int = 0, **kwargs: Any) -> ConsoleClient:
        client = ConsoleClient.connect(pair.endpoints[index], pair.cookie, **kwargs)
        clients.append(client)
        client.open(timeout=10)
        return client

    try:
        yield attach
    finally:
        for client in clients:
            client.close(timeout=1)


def audit_records(pair: LocalCluster, index: int) -> list[dict[str, Any]]:
    path = Path(pair.node(index).state_dir) / "audit.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_statement_runs_inside_the_node_process(attach: Attach, pair: LocalCluster) -> None:
    client = attach()
    outcome, _ = run(client, "import os\nos.getpid(), str(node())")
    assert outcome.results == [repr((pair.node(0).pid, pair.names[0]))]


def test_concurrent_sessions_stream_in_order_each_to_its_own_client(attach: Attach) -> None:
    first, second = attach(), attach()
    out1: list[str] = []
    out2: list[str] = []
    f1 = in_background(first, "for i in range(500): print('one', i)", out1)
    f2 = in_background(second, "for i in range(500): print('two', i)", out2)
    assert f1.result(timeout=20).ok and f2.result(timeout=20).ok
    assert "".join(out1).splitlines() == [f"one {i}" for i in range(500)]
    assert "".join(out2).splitlines() == [f"two {i}" for i in range(500)]


def test_the_nodes_own_stdout_is_left_alone(attach: Attach, pair: LocalCluster) -> None:
    client = attach()
    run(client, "print('for the console only')")
    # A plain thread has no console context: it stands for the application.
    code = "import threading\nt = threading.Thread(target=print, args=('app thread',))\n"
    run(client, code + "t.start(); t.join()")
    lines = pair.node(0).stdout_lines
    wait_until(lambda: "app thread" in lines, timeout=5, message="node stdout line")
    assert "for the console only" not in lines


def test_interrupt_stops_a_busy_loop_and_a_long_sleep(attach: Attach) -> None:
    client = attach()
    for code in ("while True: pass", "import time\ntime.sleep(100)"):
        future, _ = started(client, "print('go')\n" + code, timeout=10)
        client.interrupt()
        outcome = future.result(timeout=10)
        assert (outcome.status, outcome.exc_type) == ("interrupted", "KeyboardInterrupt"), code
        assert outcome.duration < 30
    assert run(client, "'node alive'")[0].results == ["'node alive'"]


def test_input_round_trip(attach: Attach) -> None:
    client = attach()
    outcome, out = run(client, "go = input('continue? [y/N] ') == 'y'\ngo", on_input=lambda: "y\n")
    assert out == "continue? [y/N] " and outcome.results == ["True"]


def test_completion_from_the_nodes_namespace(attach: Attach) -> None:
    client = attach()
    run(client, "inventory_total = 12")
    # The first completion loads jedi on the node (it may pass its cap: try again).
    items = wait_until(lambda: client.complete("inventory", 9), timeout=30)
    assert ("inventory_total", -9, "instance") in items
    names = [name for name, _, _ in client.complete("inventory_total.bit_l", 21)]
    assert names == ["bit_length"]


def test_exit_ends_the_session_and_the_node_keeps_running(
    attach: Attach, pair: LocalCluster
) -> None:
    client = attach()
    assert run(client, "exit()")[0].status == "exit"
    with pytest.raises(SessionClosed):
        client.execute("1")
    outcome, _ = run(attach(), "raise SystemExit(3)")
    assert (outcome.status, outcome.exit_code) == ("exit", 3)
    assert pair.node(0).is_running()
    assert run(attach(), "1 + 1")[0].results == ["2"]


def test_audit_log_has_attach_statements_outcomes_and_detach(
    attach: Attach, pair: LocalCluster
) -> None:
    client = attach()
    sid = client.info.sid if client.info else ""
    run(client, "audit_marker = 1")
    run(client, "undefined_name_here")
    client.close()
    records = [r for r in audit_records(pair, 0) if r.get("sid") == sid]
    assert [r["event"] for r in records] == ["attach", "exec", "done", "exec", "done", "detach"]
    attached, started, ok, _, failed, detached = records
    assert attached["user"] and attached["host"] and attached["node"] == pair.names[0]
    assert (started["code"], ok["outcome"]) == ("audit_marker = 1", "ok")
    assert failed["outcome"] == "NameError" and failed["duration"] >= 0
    assert detached["reason"] == "client detached"


SNIPPET = """
import os
import re
import signal

def double(x):
    return 2 * x

def work(n):
    # runs on the target node; calls a helper from the same paste
    return {"pid": os.getpid(), "node": str(node()), "value": double(n)}
"""


def test_pasted_function_is_shipped_to_another_node(attach: Attach, pair: LocalCluster) -> None:
    client = attach()
    assert run(client, SNIPPET)[0].ok
    outcome, _ = run(client, f"call({pair.names[1]!r}, work, 21)")
    assert outcome.ok, outcome.traceback
    expected = {"pid": pair.node(1).pid, "node": pair.names[1], "value": 42}
    assert outcome.results == [repr(expected)]
    outcome, _ = run(client, f"good, bad = multicall({pair.names!r}, work, 1)\nsorted(good)")
    assert outcome.ok and outcome.results == [repr(sorted(pair.names))]
    outcome, _ = run(client, "multicall(nodes(), lambda: double(os.getpid()))[0]")
    assert outcome.results == [repr({pair.names[1]: 2 * pair.node(1).pid})]


def test_unshippable_closure_is_refused_at_the_caller(attach: Attach, pair: LocalCluster) -> None:
    client = attach()
    code = (
        "import threading\nlock = threading.Lock()\n"
        "def make():\n    held = lock\n    def inner():\n        return held.locked()\n"
        "    return inner\n"
        f"call({pair.names[1]!r}, make())"
    )
    outcome, _ = run(client, code)
    assert outcome.exc_type == "ShippingError" and "'held'" in outcome.traceback


def test_statement_of_a_vanished_client_runs_to_its_end_and_is_audited(
    attach: Attach, pair: LocalCluster
) -> None:
    client = attach()
    sid = client.info.sid if client.info else ""
    chunks: list[str] = []
    in_background(client, "import time\nprint('working')\ntime.sleep(1.0)\n'finished'", chunks)
    wait_until(lambda: "working" in "".join(chunks), timeout=10, message="statement started")
    client._link.close()  # the client vanishes: no goodbye, no more pings

    def outcome() -> str | None:
        for record in audit_records(pair, 0):
            if record.get("sid") == sid and record["event"] == "done":
                return str(record["outcome"])
        return None

    assert wait_until(outcome, timeout=10, message="orphaned statement audited") == "ok"
    assert run(attach(), "'node still serving'")[0].ok


@pytest.mark.parametrize(
    ("signum", "silence_limit", "says"),
    [
        # Stopped: the connection stays open, only the silence tells.
        (signal.SIGSTOP, 2.0, r"stopped answering \(nothing heard for \d+ s\)"),
        # Killed: the connection closes and stays closed, long before the silence.
        (signal.SIGKILL, 600.0, r"stopped answering \(its connection closed \d+ s ago"),
    ],
    ids=["stopped-silent", "killed-closed"],
)
def test_client_reports_a_node_that_stops_answering(
    tmp_path: Path, signum: signal.Signals, silence_limit: float, says: str
) -> None:
    with LocalCluster(1, prefix="lost", tick=2.0, directory=tmp_path / "lost") as cluster:
        busy, idle = (
            ConsoleClient.connect(
                cluster.endpoints[0],
                cluster.cookie,
                ping_interval=0.2,
                silence_limit=silence_limit,
            )
            for _ in range(2)
        )
        lost: list[str] = []
        idle.on_lost = lost.append
        node = cluster.node(0)
        try:
            busy.open(timeout=10)
            idle.open(timeout=10)
            future, _ = started(busy, "import time\nprint('go')\ntime.sleep(60)", timeout=10)
            os.kill(node.pid, signum)
            with pytest.raises(SessionClosed, match=says):
                future.result(timeout=30)
            wait_until(lambda: lost, timeout=30, message="idle client told")
            assert re.search(says, lost[0]), lost[0]
            with pytest.raises(SessionClosed):
                idle.execute("1")
        finally:
            if signum == signal.SIGSTOP:
                os.kill(node.pid, signal.SIGCONT)
            busy.close(timeout=0.5)
            idle.close(timeout=0.5)


def test_warnings_reach_only_the_session_that_caused_them(attach: Attach) -> None:
    client = attach()
    outcome, out = run(client, "import warnings\nwarnings.warn('careful now')")
    assert outcome.ok and "UserWarning: careful now" in out


RUN_SNIPPET = """
import os
import re
import signal

def where():
    return os.getpid()

def fanout():
    good, bad = multicall(nodes(), where)
    return sorted(good.values())
"""


def test_functions_of_a_snippet_run_from_the_shell_are_shippable(
    pair: LocalCluster, tmp_path: Path
) -> None:
    snippet = tmp_path / "fanout.py"
    snippet.write_text(RUN_SNIPPET)
    env = dict(os.environ, HOTMESH_COOKIE_FILE=str(pair.cookie_file))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hotmesh",
            "run",
            pair.endpoints[0],
            str(snippet),
            "--call",
            "fanout",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr([pair.node(1).pid])


def test_node_stopped_from_its_own_console_stops_cleanly(
    start_node: Callable[..., Any],
) -> None:
    node = start_node("selfstop")
    client = ConsoleClient.connect(node.endpoint, ping_interval=0.2, silence_limit=3.0)
    try:
        client.open(timeout=10)
        refused, _ = run(client, "node().stop()")
        assert refused.exc_type == "ConsoleError" and node.is_alive()
        chunks: list[str] = []
        in_background(client, "node().stop(confirm=True)", chunks)
        wait_until(lambda: not node.is_alive(), timeout=10, message="node stopped")
    finally:
        client.close(timeout=0.5)


def test_a_remote_failure_shows_both_nodes_user_frames_and_the_message_once(
    attach: Attach, pair: LocalCluster
) -> None:
    client = attach()
    cell = (
        "def check_stock(item):\n"
        "    raise LookupError(f'no stock for {item}')\n"
        "\n"
        f"call({pair.names[1]!r}, check_stock, 'anvil')\n"
    )
    outcome, _ = run(client, cell)
    text = outcome.traceback
    assert outcome.exc_type == "RemoteError"
    assert f"call({pair.names[1]!r}, check_stock, 'anvil')" in text  # the cell's line
    assert f"--- on {pair.names[1]} ---" in text
    assert "raise LookupError(f'no stock for {item}')" in text  # the remote source line
    assert text.count("no stock for anvil") == 1
    assert "hotmesh/_rpc" not in text and "hotmesh/_console" not in text
    assert len(text.splitlines()) <= 10


def test_status_and_who_show_every_node_and_who_is_attached(
    attach: Attach, pair: LocalCluster
) -> None:
    client = attach(1)
    run(client, "'attached'")
    env = dict(os.environ)
    env.update(HOTMESH_STATE_DIR=str(pair.state_root), HOTMESH_COOKIE_FILE=str(pair.cookie_file))

    def hotmesh(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "hotmesh", *args]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)

    done = hotmesh("status", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["node"]: row for row in map(json.loads, done.stdout.splitlines())}
    assert sorted(rows) == sorted(pair.names)
    first, second = (rows[name] for name in pair.names)
    assert first["version"] and first["uptime"] > 0 and first["provisional_left"] is None
    sid = client.info.sid if client.info else ""
    assert [s["sid"] for s in second["sessions"]] == [sid]
    assert second["sessions"][0]["via"] == "attach" and second["sessions"][0]["user"]
    table = hotmesh("status", pair.names[0]).stdout.splitlines()
    assert table[0].split() == ["NODE", "VERSION", "AIRBAG", "UP", "CONSOLES"]
    assert len(table) == 3 and "(attach)" in table[1 + pair.names.index(pair.names[1])]
    who = hotmesh("who").stdout.splitlines()
    assert who[0].split()[:3] == ["NODE", "USER", "FROM"]
    assert [line.split()[0] for line in who if sid in line] == [pair.names[1]]
