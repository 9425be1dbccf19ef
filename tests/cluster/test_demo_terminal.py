"""``hotmesh demo`` in a real terminal (tmux): Ctrl-C reaches the statement, never the nodes."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.terminal import Terminal

pytestmark = pytest.mark.cluster


@pytest.fixture
def demo_terminal(tmp_path: Path) -> Iterator[Terminal]:
    env = {
        "HOTMESH_STATE_DIR": str(tmp_path / "state"),
        "PATH": os.environ.get("PATH", ""),
        "TERM": "xterm",
    }
    argv = [sys.executable, "-m", "hotmesh", "demo", "--nodes", "2", "--connections", "1"]
    terminal = Terminal(argv, env)
    try:
        yield terminal
    finally:
        terminal.close()


@pytest.mark.timeout(120)
def test_ctrl_c_in_the_demo_interrupts_the_statement_and_every_node_keeps_serving(
    demo_terminal: Terminal,
) -> None:
    term = demo_terminal
    term.wait_for(r"demo1@\S+ \[1\]>", timeout=60)
    term.text("import time; print('sleeping'); time.sleep(60)")
    term.wait_for(r"\nsleeping")
    term.keys("C-c")
    term.wait_for(r"KeyboardInterrupt")
    term.wait_for(r"\[2\]>")
    # Both nodes still run and are still meshed, and no client request was lost.
    term.text("sorted([str(node()), *nodes()])")
    screen = term.wait_for(r"Out\[2\]: \['demo1@\S+', 'demo2@\S+'\]")
    assert "Traceback" not in screen.split("KeyboardInterrupt")[1]
    term.keys("C-d")
    term.wait_for(r"exit")
    term.keys("y")
    screen = term.wait_for(r"EXIT-STATUS=\d+")
    assert "EXIT-STATUS=0" in screen and " 0 dropped, 0 errors" in screen.split("whole run")[1]
