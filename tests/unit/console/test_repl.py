"""The ptpython front end driven through a pipe input against a console server
on a fake node: what an engineer types reaches the node, what it prints comes back."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.input.base import PipeInput
from prompt_toolkit.output import DummyOutput

from hotmesh._console.client import ConsoleClient
from hotmesh._console.repl import RemoteRepl
from hotmesh._console.server import ConsoleServer
from hotmesh.testing.fakes import FakeNode
from tests.waiting import wait_until

PASTE = """\
def area(w, h):
    return w * h

def report(items):
    total = 0

    for w, h in items:
        total += area(w, h)
    return total

print('pasted', report([(2, 3), (4, 5)]))
"""


class Session:
    """A RemoteRepl running on a background thread, fed through a pipe."""

    def __init__(self, client: ConsoleClient, pipe: PipeInput) -> None:
        self.pipe = pipe
        self.written: list[tuple[str, str]] = []
        self.repl = RemoteRepl(
            client,
            input=pipe,
            output=DummyOutput(),
            write=lambda name, text: self.written.append((name, text)),
        )
        self.repl.confirm_exit = False
        self.results: list[object] = []
        original = self.repl._show_result
        self.repl._show_result = lambda result: (self.results.append(result), original(result))  # type: ignore[method-assign]

    def text(self) -> str:
        return "".join(text for _, text in self.written)

    def type(self, keys: str) -> None:
        self.pipe.send_text(keys)


@pytest.fixture
def session(fake_node: FakeNode, server: ConsoleServer) -> Iterator[Callable[[], Session]]:
    with create_pipe_input() as pipe:
        client = ConsoleClient(fake_node.connect(), ping_interval=0.1)
        client.open()
        yield lambda: Session(client, pipe)
        client.close(timeout=0.5)


def run_repl(s: Session, feed: Callable[[], None]) -> None:
    """Run the REPL on this (main) thread while ``feed`` types from another."""
    errors: list[BaseException] = []

    def feeder() -> None:
        try:
            feed()
        except BaseException as exc:
            errors.append(exc)
            s.type("\x04")

    thread = threading.Thread(target=feeder, daemon=True)
    thread.start()
    s.repl.run()
    thread.join(timeout=5)
    if errors:
        raise errors[0]


def test_expression_runs_on_the_node_and_its_value_is_shown(
    session: Callable[[], Session],
) -> None:
    s = session()

    def feed() -> None:
        s.type("import os\r")
        s.type("x = 20\r")
        s.type("x * 2 + 2\r")
        wait_until(lambda: s.results, timeout=5, message="result shown")
        s.type("\x04")

    run_repl(s, feed)
    assert [repr(r) for r in s.results] == ["42"]
    assert s.repl.node_name == "alpha@box"


def test_bracketed_paste_defines_functions_in_one_go(session: Callable[[], Session]) -> None:
    s = session()

    def feed() -> None:
        s.type("\x1b[200~" + PASTE + "\x1b[201~")
        s.type("\r")
        wait_until(lambda: "pasted" in s.text(), timeout=5, message="paste ran")
        s.type("area(3, 3)\r")
        wait_until(lambda: s.results, timeout=5, message="result shown")
        s.type("\x04")

    run_repl(s, feed)
    assert "pasted 26\n" in s.text()
    assert [repr(r) for r in s.results] == ["9"]
    assert any("def report" in entry for entry in s.repl.history.get_strings())


def test_ctrl_c_interrupts_the_remote_loop_and_the_prompt_comes_back(
    session: Callable[[], Session],
) -> None:
    s = session()

    def feed() -> None:
        s.type("import time\r")
        s.type("for i in range(1000): print('loop', i); time.sleep(0.01)\r")
        wait_until(lambda: "loop 3" in s.text(), timeout=5, message="loop running")
        os.kill(os.getpid(), signal.SIGINT)
        wait_until(lambda: "KeyboardInterrupt" in s.text(), timeout=5, message="interrupted")
        s.type("'still here'\r")
        wait_until(lambda: s.results, timeout=5, message="prompt back")
        s.type("\x04")

    run_repl(s, feed)
    assert "loop 999" not in s.text()
    assert [repr(r) for r in s.results] == ["'still here'"]


def test_remote_traceback_is_printed(session: Callable[[], Session]) -> None:
    s = session()

    def feed() -> None:
        s.type("1/0\r")
        wait_until(lambda: "ZeroDivisionError" in s.text(), timeout=5, message="traceback")
        s.type("\x04")

    run_repl(s, feed)
    errors = "".join(text for name, text in s.written if name == "stderr")
    assert "1/0" in errors and "ZeroDivisionError: division by zero" in errors


def test_exit_detaches_and_the_node_keeps_running(
    session: Callable[[], Session], fake_node: FakeNode, server: ConsoleServer
) -> None:
    s = session()
    s.type("exit()\r")
    s.repl.run()  # returns at once: exit() detaches here, the node never sees it
    assert server.session_count() == 1 and not fake_node.stopped
    s.repl.client.close()  # what `hotmesh attach` does once the console returns
    wait_until(lambda: server.session_count() == 0, timeout=5, message="session ended")


def test_tab_completes_from_the_nodes_namespace(session: Callable[[], Session]) -> None:
    s = session()

    def feed() -> None:
        s.type("remote_only_name = 5\r")
        # Typing that line passes through the completed text below: the
        # assignment must have run before the name is typed again.
        wait_until(lambda: s.repl.current_statement_index > 1, timeout=30, message="assigned")
        s.type("remote_only_na\t")
        buffer = s.repl.default_buffer
        # The first Tab loads jedi on the node: seconds on a loaded machine.
        wait_until(lambda: buffer.text == "remote_only_name", timeout=30, message="completed")
        s.type("\r")
        wait_until(lambda: s.results, timeout=30, message="completed name evaluated")
        s.type("\x04")

    run_repl(s, feed)
    assert [repr(r) for r in s.results] == ["5"]
