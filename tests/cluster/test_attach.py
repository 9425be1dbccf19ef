"""``hotmesh attach``, ``eval`` and ``run`` as an engineer uses them: a real
terminal (pexpect pseudo-terminal) and real node processes."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from hotmesh._console.client import ConsoleClient
from hotmesh.testing import LocalCluster
from tests.cluster.clusters import local_cluster
from tests.terminal import Terminal

pytestmark = pytest.mark.cluster

# 30 lines, with blank lines inside bodies: what a deploy snippet looks like.
SNIPPET = """\
import time

LIMIT = 3


def scale(x):
    factor = 10

    return x * factor


def summary(items):
    total = 0

    for item in items:
        total += scale(item)

    return total


class Box:
    def __init__(self, value):
        self.value = value

    def scaled(self):
        return scale(self.value)


print("snippet ok", summary(range(LIMIT)), Box(7).scaled())
"""


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with local_cluster(tmp_path_factory, 1, prefix="att", tick=2.0) as cluster:
        yield cluster


@pytest.mark.timeout(90)
def test_attach_in_a_terminal(single: LocalCluster) -> None:
    name = single.names[0]
    child = pexpect.spawn(
        sys.executable,
        ["-m", "hotmesh", "attach", name.split("@")[0], "--no-history"],
        env=single.env(TERM="xterm"),
        dimensions=(40, 120),
        encoding="utf-8",
        timeout=15,
    )
    try:
        child.expect(f"attached to {name}")
        child.expect(r"\[1\]")  # the prompt names the node and the statement number

        child.send("6 * 7000 + 17\r")
        child.expect("42017")
        child.expect(r"\[2\]")

        child.send("\x1b[200~" + SNIPPET + "\x1b[201~")
        child.send("\r")
        child.expect("snippet ok 30 70")
        child.expect(r"\[3\]")
        child.send("summary([1, 2]) + 1000\r")
        child.expect("1030")
        child.expect(r"\[4\]")

        child.send("for i in range(100000): print('tick', i); time.sleep(0.02)\r")
        child.expect("tick 5")
        child.sendintr()
        child.expect("KeyboardInterrupt")
        child.expect(r"\[5\]")
        child.send("'back' + '-at-prompt'\r")
        child.expect("back-at-prompt")
        child.expect(r"\[6\]")

        child.sendcontrol("d")
        child.expect("exit")  # ptpython asks before leaving
        child.send("y")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert single.node(0).is_running()
    client = ConsoleClient.connect(single.endpoints[0], single.cookie)
    try:
        client.open()
        assert client.execute("'alive'").results == ["'alive'"]
    finally:
        client.close()


def test_eval_prints_the_result_and_exits_zero(single: LocalCluster) -> None:
    name = single.names[0]
    for node in (name.split("@")[0], name, single.endpoints[0]):
        done = single.cli("eval", node, "print('out'); 40 + 2")
        assert (done.returncode, done.stdout) == (0, "out\n42\n"), node


def test_eval_of_a_failing_statement_prints_the_remote_traceback(single: LocalCluster) -> None:
    done = single.cli("eval", single.names[0], "{}['missing']")
    assert done.returncode == 1
    assert "KeyError: 'missing'" in done.stderr and "Traceback" in done.stderr


def test_eval_of_an_unreachable_node_exits_three(single: LocalCluster) -> None:
    done = single.cli("eval", "nobody-here", "1")
    assert done.returncode == 3 and "nobody-here" in done.stderr


def test_run_streams_the_snippet_and_calls_its_function(
    single: LocalCluster, tmp_path: Path
) -> None:
    snippet = tmp_path / "deploy.py"
    snippet.write_text(
        SNIPPET + "\ndef report(label, n):\n    return f'{label}: {summary(range(n))}'\n"
    )
    done = single.cli("run", single.endpoints[0], str(snippet), "--call", "report", "sum", "4")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "snippet ok 30 70\n'sum: 60'\n"


def test_run_fails_when_the_snippet_raises(single: LocalCluster, tmp_path: Path) -> None:
    snippet = tmp_path / "broken.py"
    snippet.write_text("print('before')\nraise RuntimeError('half-way')\n")
    done = single.cli("run", single.names[0], str(snippet))
    assert done.returncode == 1 and done.stdout == "before\n"
    assert "broken.py" in done.stderr and "RuntimeError: half-way" in done.stderr


def test_eval_with_another_clusters_cookie_is_refused(single: LocalCluster, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.cookie"
    wrong.write_text("not-the-cluster-cookie")
    wrong.chmod(0o600)
    done = single.cli(
        "eval",
        single.endpoints[0],
        "1",
        "--cookie-file",
        str(wrong),
        "--connect-timeout",
        "3",
    )
    assert done.returncode == 3 and "cookie" in done.stderr


@pytest.mark.parametrize(
    ("code", "status", "stderr"),
    [
        ("print('fine')", 0, ""),
        ("exit()", 0, ""),
        ("import sys; print('leaving'); sys.exit(3)", 3, ""),
        ("raise SystemExit('bad config')", 1, "bad config"),
        ("raise ValueError('nope')", 1, "ValueError: nope"),
        # A module body calling sys.exit(0) during a load is a failure, not a success.
        ("exec(compile('raise SystemExit(0)', 'lib_mod.py', 'exec'))", 1, "lib_mod.py"),
    ],
)
def test_eval_exit_status_is_the_statements(
    single: LocalCluster, code: str, status: int, stderr: str
) -> None:
    done = single.cli("eval", single.names[0], code)
    assert done.returncode == status, done.stderr
    assert stderr in done.stderr


def test_run_whose_snippet_exits_before_its_call_fails(
    single: LocalCluster, tmp_path: Path
) -> None:
    snippet = tmp_path / "early.py"
    snippet.write_text("import sys\ndef report():\n    return 1\nsys.exit(0)\n")
    done = single.cli("run", single.names[0], str(snippet), "--call", "report")
    assert done.returncode == 1 and "before report" in done.stderr
    snippet.write_text("import sys\nsys.exit(4)\n")
    assert single.cli("run", single.names[0], str(snippet)).returncode == 4


def test_eval_interrupted_by_ctrl_c_exits_one(single: LocalCluster) -> None:
    code = "import time; print('go', flush=True); time.sleep(60)"
    with subprocess.Popen(
        [sys.executable, "-m", "hotmesh", "eval", single.names[0], code],
        env=single.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None and child.stdout.readline() == "go\n"
            child.send_signal(signal.SIGINT)
            _, err = child.communicate(timeout=20)
        finally:
            child.kill()
    assert child.returncode == 1 and "KeyboardInterrupt" in err


@pytest.mark.timeout(90)
def test_eval_that_kills_its_node_exits_three_and_is_on_record(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with local_cluster(tmp_path_factory, 1, prefix="doomed", tick=2.0) as cluster:
        done = cluster.cli("eval", cluster.names[0], "import os; os._exit(9)")
        audit = Path(cluster.node(0).state_dir) / "audit.log"
        records = [json.loads(line) for line in audit.read_text().splitlines()]
    assert done.returncode == 3 and "stopped answering" in done.stderr
    assert [r["code"] for r in records if r["event"] == "exec"] == ["import os; os._exit(9)"]


# Numbered lines of 1 KiB: order, loss and corruption all show.
def _big_code(lines: int) -> str:
    return (
        "import sys\n"
        f"for i in range({lines}): sys.stdout.write(f'{{i:09d}} ' + 'x' * 1013 + '\\n')\n"
        "print('END' + '-MARK')\n"
    )


def _big_output(lines: int) -> bytes:
    return b"".join(b"%09d " % i + b"x" * 1013 + b"\n" for i in range(lines))


@pytest.mark.timeout(120)
def test_eval_streams_100_mib_byte_exact(single: LocalCluster) -> None:
    lines = 100 * 1024
    done = subprocess.run(
        [sys.executable, "-m", "hotmesh", "eval", single.names[0], _big_code(lines)],
        env=single.env(),
        capture_output=True,
        timeout=100,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == _big_output(lines) + b"END-MARK\n"


@pytest.mark.timeout(120)
def test_attach_streams_output_to_the_terminal_byte_exact(single: LocalCluster) -> None:
    # 24 MiB: a pseudo-terminal moves ~5 MiB/s on a loaded CI machine. The
    # client path is the one eval takes (100 MiB above); here the terminal
    # is the slow reader the statement must wait for.
    lines = 24 * 1024
    child = pexpect.spawn(
        sys.executable,
        ["-m", "hotmesh", "attach", single.names[0], "--no-history"],
        env=single.env(TERM="xterm"),
        dimensions=(40, 120),
        timeout=15,
    )
    try:
        child.expect(rb"\[1\]")
        child.send("\x1b[200~" + _big_code(lines) + "\x1b[201~")  # pasted
        child.send("\r")
        received = bytearray()
        # Read until the next prompt: it may come in the same chunk as the
        # end mark, which pexpect's own buffer would then never see.
        while not re.search(rb"END-MARK.*\[2\]", received[-8192:], re.S):
            received += child.read_nonblocking(1 << 20, timeout=30)
        child.sendcontrol("d")
        child.expect("exit")
        child.send("y")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    # The terminal turns each \n into \r\n; ptpython leaves a few escape
    # sequences before the first line. The statement's lines are whole and in order.
    text = re.sub(rb"\x1b\[[0-9;? ]*[A-Za-z]", b"", bytes(received)).replace(b"\r\n", b"\n")
    numbered = [line + b"\n" for line in text.split(b"\n") if re.match(rb"\d{9} x", line)]
    assert b"".join(numbered) == _big_output(lines)


@pytest.mark.timeout(150)
def test_ctrl_c_bursts_and_a_stuck_statement_always_resolve_in_a_real_terminal(
    single: LocalCluster,
) -> None:
    keep = ("HOTMESH_", "PYTHON", "PROMPT_TOOLKIT_", "PATH", "HOME")
    env = {k: v for k, v in single.env().items() if k.startswith(keep)}
    env["TERM"] = "xterm"
    argv = [sys.executable, "-m", "hotmesh", "attach", single.names[0], "--no-history"]
    term = Terminal(argv, env)
    try:
        term.wait_for(r"\[1\]>")
        for round_, burst in enumerate([10, 50, 200], start=1):
            term.text(f"import time; print('go-' + '{round_}'); time.sleep(60)")
            term.wait_for(f"\ngo-{round_}")
            term.keys(*["C-c"] * burst)
            term.wait_for("KeyboardInterrupt", count=round_)
        term.text("'after' + '-bursts'")
        term.wait_for(r"Out\[\d+\]: 'after-bursts'")
        # A statement blocked in C: reported, then left running on one more press.
        term.text("import threading; print('stuck-' + 'now'); threading.Event().wait()")
        term.wait_for("\nstuck-now")
        term.keys(*["C-c"] * 10)
        term.wait_for(r"did not stop within 1 s")
        term.keys("C-c")
        term.wait_for(r"left running on")
        term.text("6 * 7")
        term.wait_for(r"Out\[\d+\]: 42")
        term.text("exit()")
        screen = term.wait_for(r"EXIT-STATUS=\d+")
    finally:
        term.close()
    assert "EXIT-STATUS=0" in screen and "detached from" in screen
