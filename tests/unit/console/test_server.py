"""The console server and client end to end over a fake node (no sockets)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable

import pytest

from hotmesh._console.client import ConsoleClient
from hotmesh._console.server import ConsoleServer
from hotmesh._errors import SessionClosed
from hotmesh.testing.fakes import FakeNode
from tests.consoles import in_background, run, started
from tests.waiting import wait_until

Attach = Callable[[], ConsoleClient]


def test_expression_result_is_echoed_and_bound_to_underscore(attach: Attach) -> None:
    client = attach()
    outcome, _ = run(client, "1 + 1")
    assert outcome.status == "ok" and outcome.results == ["2"]
    assert run(client, "_ * 10")[0].results == ["20"]


def test_pasted_block_with_blank_lines_runs_in_order_and_echoes_each_expression(
    attach: Attach,
) -> None:
    client = attach()
    cell = "def f(x):\n    y = x + 1\n\n    return y\n\nprint('defined')\nf(1)\nf(2)\n"
    outcome, out = run(client, cell)
    assert (outcome.status, out, outcome.results) == ("ok", "defined\n", ["2", "3"])


def test_syntax_error_runs_nothing(attach: Attach) -> None:
    client = attach()
    outcome, _ = run(client, "x = 1\ny = (\n")
    assert (outcome.status, outcome.exc_type) == ("error", "SyntaxError")
    assert "NameError" in run(client, "x")[0].traceback


def test_exception_traceback_shows_the_cell_not_the_console(attach: Attach) -> None:
    client = attach()
    outcome, _ = run(client, "def boom():\n    raise ValueError('bad')\nboom()")
    assert (outcome.status, outcome.exc_type) == ("error", "ValueError")
    assert "raise ValueError('bad')" in outcome.traceback
    assert "session.py" not in outcome.traceback


def test_output_streams_in_order_with_results(attach: Attach) -> None:
    client = attach()
    events: list[str] = []
    run(client, "import sys")
    client.execute(
        "print('a')\n7\nprint('b', file=sys.stderr)\n",
        on_output=lambda name, text: events.append(f"{name}:{text}"),
        on_result=lambda text: events.append(f"result:{text}"),
    )
    assert events == ["stdout:a\n", "result:7", "stderr:b\n"]


def test_print_loop_output_is_batched(attach: Attach, fake_node: FakeNode) -> None:
    client = attach()
    chunks: list[str] = []
    outcome = client.execute(
        "for i in range(2000): print('line', i)", on_output=lambda n, t: chunks.append(t)
    )
    text = "".join(chunks)
    assert outcome.ok and text.splitlines()[-1] == "line 1999" and len(text.splitlines()) == 2000
    assert len(chunks) < 200


def test_sessions_are_isolated_in_namespace_and_output(attach: Attach) -> None:
    first, second = attach(), attach()
    run(first, "secret = 41")
    assert run(second, "secret")[0].exc_type == "NameError"
    out1: list[str] = []
    out2: list[str] = []
    f1 = in_background(first, "for i in range(300): print('one', i)", out1)
    f2 = in_background(second, "for i in range(300): print('two', i)", out2)
    assert f1.result(timeout=10).ok and f2.result(timeout=10).ok
    assert "two" not in "".join(out1) and "one" not in "".join(out2)
    assert "".join(out1).count("\n") == 300 == "".join(out2).count("\n")


def test_processes_own_stdout_is_left_alone(
    attach: Attach, capsys: pytest.CaptureFixture[str]
) -> None:
    client = attach()
    run(client, "print('to the client')")
    print("to the app")
    assert "to the app" in capsys.readouterr().out


def test_interrupt_stops_a_busy_loop(attach: Attach) -> None:
    client = attach()
    future, _ = started(client, "print('go')\nwhile True: pass")
    client.interrupt()
    outcome = future.result(timeout=5)
    assert (outcome.status, outcome.exc_type) == ("interrupted", "KeyboardInterrupt")
    assert run(client, "'alive'")[0].results == ["'alive'"]


def test_interrupt_ends_a_long_time_sleep(attach: Attach) -> None:
    client = attach()
    future, _ = started(client, "import time\nprint('go')\ntime.sleep(100)")
    client.interrupt()
    outcome = future.result(timeout=5)
    assert outcome.status == "interrupted" and outcome.duration < 50


def test_a_caught_interrupt_does_not_fire_twice(attach: Attach) -> None:
    client = attach()
    code = (
        "import time\ntry:\n    print('go')\n    time.sleep(100)\nexcept KeyboardInterrupt:\n"
        "    time.sleep(0.01)\n    print('cleaned up')\n"
    )
    future, chunks = started(client, code)
    client.interrupt()
    assert future.result(timeout=5).ok
    assert "cleaned up" in "".join(chunks)


def test_where_shows_the_frame_a_blocked_statement_waits_in(
    attach: Attach, server: ConsoleServer
) -> None:
    client = attach()
    run(client, "import threading\nblocker = threading.Event()\ndef stuck():\n    blocker.wait()\n")
    assert client.where() == ""
    future, _ = started(client, "print('go')\nstuck()")
    client.interrupt()  # a C-level wait ignores it until it returns
    stack = client.where()
    assert "stuck()" in stack and "blocker.wait()" in stack and "session.py" not in stack
    next(iter(server._sessions.values())).session.namespace["blocker"].set()
    assert future.result(timeout=5).status == "interrupted"


def test_input_asks_the_client(attach: Attach) -> None:
    client = attach()
    outcome, out = run(client, "answer = input('continue? [y/N] ')\nanswer", on_input=lambda: "y")
    assert out == "continue? [y/N] " and outcome.results == ["'y'"]


def test_interrupt_while_waiting_for_input(attach: Attach) -> None:
    client = attach()
    asked = threading.Event()

    def answer() -> str:
        asked.set()
        client.interrupt()
        return "too late"

    outcome, _ = run(client, "input('sure? ')", on_input=answer)
    assert asked.is_set() and outcome.status == "interrupted"
    assert "threading.py" not in outcome.traceback and "session.py" not in outcome.traceback
    assert run(client, "input()", on_input=lambda: "again")[0].results == ["'again'"]


def test_input_at_end_of_file_raises_eof_error(attach: Attach) -> None:
    client = attach()
    outcome, _ = run(client, "input()", on_input=lambda: None)
    assert outcome.exc_type == "EOFError"


def test_exit_ends_the_session_not_the_node(
    attach: Attach, fake_node: FakeNode, server: ConsoleServer
) -> None:
    client = attach()
    outcome, _ = run(client, "exit()")
    assert outcome.status == "exit" and not fake_node.stopped
    wait_until(lambda: server.session_count() == 0, timeout=5, message="session ended")
    with pytest.raises(SessionClosed):
        client.execute("1")


def test_node_stop_needs_confirmation(attach: Attach, fake_node: FakeNode) -> None:
    client = attach()
    outcome, _ = run(client, "node().stop()")
    assert outcome.exc_type == "ConsoleError" and "confirm=True" in outcome.traceback
    assert not fake_node.stopped
    assert run(client, "node().stop(confirm=True)")[0].ok and fake_node.stopped


def test_helpers_reach_the_node(attach: Attach) -> None:
    client = attach()
    assert run(client, "str(node()), nodes()")[0].results == ["('alpha@box', [])"]
    assert run(client, "call('b@h', 'os.getpid')")[0].results == [
        "('called', 'b@h', 'os.getpid', ())"
    ]
    outcome, out = run(client, "help_hotmesh()")
    assert outcome.ok and "multicall" in out and "versions()" in out


def test_spawned_thread_and_asyncio_task_output_reach_the_session(attach: Attach) -> None:
    client = attach()
    outcome, out = run(client, "t = spawn(print, 'from thread')\nt.join()")
    assert outcome.ok and out == "from thread\n"
    cell = (
        "import asyncio\nasync def job():\n    print('from task')\nawait asyncio.create_task(job())"
    )
    outcome, out = run(client, cell)
    assert outcome.ok and out == "from task\n"


def test_log_here_shows_a_loggers_records_until_stopped(attach: Attach) -> None:
    client = attach()
    late: list[str] = []
    client.on_unsolicited = lambda message: late.append(message.get("text", ""))
    run(client, "import logging\nstop = log_here('demo.upgrade')")
    logger = logging.getLogger("demo.upgrade.step")
    logger.warning("node %s upgraded", "n2")
    wait_until(lambda: "node n2 upgraded" in "".join(late), timeout=5, message="record shown")
    assert "WARNING demo.upgrade.step" in "".join(late)
    run(client, "stop()")
    assert not logging.getLogger("demo.upgrade").handlers


def test_log_handlers_of_a_session_go_when_it_ends(attach: Attach, server: ConsoleServer) -> None:
    client = attach()
    run(client, "log_here('demo.gone')")
    assert logging.getLogger("demo.gone").handlers
    client.close()
    wait_until(lambda: not logging.getLogger("demo.gone").handlers, timeout=5, message="removed")


def test_top_level_await_can_be_interrupted(attach: Attach) -> None:
    client = attach()
    future, _ = started(client, "import asyncio\nprint('go')\nawait asyncio.sleep(100)")
    client.interrupt()
    assert future.result(timeout=5).status == "interrupted"


def test_completion_uses_the_live_namespace(attach: Attach) -> None:
    client = attach()
    run(client, "counter_value = 12")
    # The first completion loads jedi on the node; on a loaded machine it may
    # pass its time cap and come back empty, as a first Tab would: press again.
    items = wait_until(lambda: client.complete("counter_v", 9), timeout=30)
    assert ("counter_value", -9, "instance") in items
    names = [name for name, _, _ in client.complete("counter_value.bit_l", 19)]
    assert names == ["bit_length"]


def test_audit_log_records_attach_each_statement_at_start_and_end_and_detach(
    attach: Attach, server: ConsoleServer
) -> None:
    client = attach()
    run(client, "1/0")
    run(client, "x = 1")
    client.close()
    events = server.audit.read()
    assert [e["event"] for e in events] == ["attach", "exec", "done", "exec", "done", "detach"]
    attach_event, started, failed, _, ok, detach = events
    assert attach_event["user"] and attach_event["host"] and attach_event["node"] == "alpha@box"
    assert started["code"] == "1/0" and started["rid"] == failed["rid"]
    assert failed["outcome"] == "ZeroDivisionError"
    assert ok["outcome"] == "ok" and ok["duration"] >= 0
    assert detach["reason"] == "client detached"


def test_a_statement_is_on_record_while_it_still_runs(
    attach: Attach, server: ConsoleServer
) -> None:
    client = attach()
    future, _ = started(client, "import time\nprint('go')\ntime.sleep(100)")
    running = [e for e in server.audit.read() if e["event"] == "exec"]
    assert running and "time.sleep(100)" in running[-1]["code"]
    assert not [e for e in server.audit.read() if e["event"] == "done"]
    client.interrupt()
    assert future.result(timeout=5).status == "interrupted"


@pytest.mark.parametrize(
    ("code", "exit_code", "stderr"),
    [
        ("exit()", 0, ""),
        ("import sys\nsys.exit(3)", 3, ""),
        ("def leave():\n    raise SystemExit(7)\nleave()", 7, ""),
        ("raise SystemExit('no config')", 1, "no config\n"),
        ("raise SystemExit(999)", 1, ""),
    ],
)
def test_an_exit_of_the_statement_ends_the_session_with_its_exit_code(
    attach: Attach, code: str, exit_code: int, stderr: str
) -> None:
    client = attach()
    outcome, out = run(client, code)
    assert (outcome.status, outcome.exit_code, out) == ("exit", exit_code, stderr)


def test_a_system_exit_raised_deeper_is_an_error_and_the_session_goes_on(attach: Attach) -> None:
    client = attach()
    # What a module body calling sys.exit() does to a load.
    outcome, _ = run(client, "exec(compile('raise SystemExit(0)', 'settings_mod.py', 'exec'))")
    assert (outcome.status, outcome.exc_type) == ("error", "SystemExit")
    assert "settings_mod.py" in outcome.traceback
    assert run(client, "'still here'")[0].results == ["'still here'"]


def test_vanished_client_statement_finishes_and_session_is_reaped(
    fake_node: FakeNode, short_lease_server: ConsoleServer
) -> None:
    server = short_lease_server
    link = fake_node.connect()
    client = ConsoleClient(link, ping_interval=0.1, silence_limit=5.0)
    client.open()
    run(client, "import threading\ngate = threading.Event()")
    chunks: list[str] = []
    in_background(client, "print('started')\ngate.wait(10)\n'finished'", chunks)
    wait_until(lambda: "started" in "".join(chunks), timeout=5, message="statement started")
    link.mute = True  # the client vanishes: no more pings, no close
    wait_until(
        lambda: any(e["event"] == "lease expired" for e in server.audit.read()),
        timeout=5,
        message="lease expiry audited",
    )
    assert server.session_count() == 1  # busy: kept while its statement runs
    server_session = next(iter(server._sessions.values())).session
    server_session.namespace["gate"].set()
    wait_until(lambda: server.session_count() == 0, timeout=10, message="session reaped")
    # The reaper takes the session out of the table, then writes its detach.
    wait_until(
        lambda: server.audit.read()[-1]["event"] == "detach", timeout=5, message="detach audited"
    )
    events = server.audit.read()
    started = [e for e in events if e["event"] == "exec" and "gate.wait" in e["code"]]
    finished = [e for e in events if e["event"] == "done" and e["rid"] == started[0]["rid"]]
    assert finished and finished[0]["outcome"] == "ok"
    assert events[-1]["event"] == "detach" and events[-1]["reason"] == "lease expired"


def test_message_for_unknown_session_gets_an_error(
    fake_node: FakeNode, server: ConsoleServer
) -> None:
    link = fake_node.connect()
    link.send({"t": "console.exec", "sid": "nope", "rid": 1, "code": "1"})
    reply = link.recv(timeout=5)
    assert reply is not None and reply["t"] == "console.error" and reply["gone"]


def test_malformed_message_is_refused_without_harm(
    fake_node: FakeNode, server: ConsoleServer
) -> None:
    link = fake_node.connect()
    link.send({"t": "console.open", "rid": 1})
    opened = link.recv(timeout=5)
    assert opened is not None
    link.send({"t": "console.exec", "sid": opened["sid"], "rid": "x", "code": 5})
    reply = link.recv(timeout=5)
    assert reply is not None and reply["t"] == "console.error"
    assert sys.stdout is not None


def test_a_vanished_client_never_leaves_a_statement_waiting_and_its_end_is_audited(
    fake_node: FakeNode, short_lease_server: ConsoleServer
) -> None:
    server = short_lease_server
    link = fake_node.connect()
    client = ConsoleClient(link, ping_interval=0.1, silence_limit=5.0)
    client.open()
    chunks: list[str] = []
    code = "print('go')\nfor i in range(20000): print('x' * 100)\n'finished'"
    in_background(client, code, chunks)
    wait_until(lambda: "go" in "".join(chunks), timeout=5, message="statement started")
    link.mute = True  # gone: no acks, no pings; the statement's writes wait for it...
    # ... until its lease expires; then the statement runs to its end, on record.
    wait_until(
        lambda: any(e["event"] == "done" and e["outcome"] == "ok" for e in server.audit.read()),
        timeout=10,
        message="the statement's end audited",
    )


def _press_ctrl_c(times: int) -> None:
    for _ in range(times):
        os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("burst", [1, 10, 50, 200])
def test_any_burst_of_ctrl_c_interrupts_a_statement_once_and_the_session_goes_on(
    attach: Attach, burst: int
) -> None:
    client = attach()
    chunks: list[str] = []

    def on_output(name: str, text: str) -> None:
        chunks.append(text)
        if "go" in text:
            threading.Thread(target=_press_ctrl_c, args=(burst,)).start()

    with client.counting_sigint():  # as the attached console does, all along
        outcome = client.execute("import time\nprint('go')\ntime.sleep(100)", on_output=on_output)
        assert outcome.status == "interrupted"
        assert run(client, "'next'")[0].results == ["'next'"]


@pytest.mark.parametrize("burst", [3, 50])
def test_a_statement_that_will_not_stop_is_reported_then_left_running(
    attach: Attach, server: ConsoleServer, burst: int
) -> None:
    client = attach()
    run(client, "import threading\ngate = threading.Event()\nkept = 'mine'")
    chunks: list[str] = []

    def on_output(name: str, text: str) -> None:
        chunks.append(text)
        if text == "go\n":
            threading.Thread(target=_press_ctrl_c, args=(burst,)).start()
        if "did not stop" in text:  # reported: one more press leaves it
            threading.Thread(target=_press_ctrl_c, args=(1,)).start()

    late: list[dict[str, object]] = []
    client.on_unsolicited = late.append
    with client.counting_sigint():
        # gate.wait() without a timeout blocks in C: interrupts wait for it to return.
        outcome = client.execute("print('go')\ngate.wait()\nprint('released')", on_output=on_output)
    report = "".join(chunks)
    assert outcome.status == "abandoned" and outcome.thread
    assert "gate.wait()" in report and report.count("did not stop") == 1
    # The session goes on, with its namespace, on a fresh thread.
    assert run(client, "kept")[0].results == ["'mine'"]
    run(client, "gate.set()")
    ended = wait_until(lambda: [m for m in late if m.get("t") == "console.done"], timeout=5)
    # The interrupt sent at the first press lands once the wait returns.
    assert ended[0]["status"] == "interrupted"
    assert [e["event"] for e in server.audit.read()].count("abandon") == 1


def test_results_fit_the_width_the_client_asked_for(
    fake_node: FakeNode, server: ConsoleServer
) -> None:
    client = ConsoleClient(fake_node.connect(), ping_interval=0.1, silence_limit=5.0)
    client.open(width=40)
    try:
        outcome, _ = run(client, "{f'node{i}@host': i for i in range(6)}")
        assert outcome.results[0].splitlines()[:2] == ["{'node0@host': 0,", " 'node1@host': 1,"]
    finally:
        client.close()
