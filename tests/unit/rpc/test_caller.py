"""The caller side: replies, timeouts and node-down without sockets.

The "network" is a function that decodes the frame and answers from a thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from hotmesh._errors import CallTimeout, EncodeError, NodeDown, NodeStopped, RemoteError
from hotmesh._rpc import messages
from hotmesh._rpc.caller import Caller, Deliver
from hotmesh._wire.frames import decode_frame, encode_frame
from tests.waiting import wait_until

Answer = Callable[[str, dict[str, Any]], dict[str, Any] | None]


class FakePeers:
    """The node's side of the caller: a fake network that answers frames from a thread."""

    def __init__(
        self,
        up: set[str],
        send: Callable[[str, bytes], None] = lambda target, data: None,
        run_local: Callable[[dict[str, Any], Deliver], None] = lambda message, deliver: None,
        line: FakeLine | None = None,
    ) -> None:
        self.up = up
        self._send = send
        self._run_local = run_local
        self.line = line

    def is_up(self, target: str) -> bool:
        return target in self.up

    def line_for(self, target: str) -> FakeLine | None:
        return self.line

    def lines_for(self, targets: list[str]) -> list[FakeLine | None]:
        return [self.line for _ in targets]

    def send(self, target: str, data: bytes) -> None:
        self._send(target, data)

    def encode(self, message: dict[str, Any]) -> bytes:
        return encode_frame(message)

    def decode(self, data: bytes) -> dict[str, Any]:
        return decode_frame(data)

    def run_local(self, message: dict[str, Any], deliver: Deliver) -> None:
        self._run_local(message, deliver)

    def on_io_thread(self) -> bool:
        return False


def make_caller(answer: Answer, up: set[str]) -> Caller:
    caller: Caller

    def send(target: str, data: bytes) -> None:
        reply = answer(target, decode_frame(data))
        if reply is not None:
            threading.Thread(target=caller.on_reply, args=(target, reply)).start()

    def run_local(message: dict[str, Any], deliver: Deliver) -> None:
        deliver(messages.ok_reply(0, ("local", tuple(message["a"]))))

    caller = Caller("a@h", FakePeers(up, send, run_local))
    return caller


def echo(target: str, message: dict[str, Any]) -> dict[str, Any]:
    return messages.ok_reply(
        message["id"], (target, message["fn"], tuple(message["a"]), message["k"])
    )


def start_waiting_call(caller: Caller, timeout: float = 30.0) -> tuple[threading.Thread, list[Any]]:
    """Call m.f on b@h from a thread; return once the call is pending.

    The list gets the call's result, or the exception it raised.
    """
    outcome: list[Any] = []

    def waiting_call() -> None:
        try:
            outcome.append(caller.call("b@h", "m.f", (), {}, timeout))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=waiting_call)
    thread.start()
    wait_until(lambda: len(caller._pending) == 1, timeout=5)
    return thread, outcome


def test_call_returns_the_reply_value() -> None:
    caller = make_caller(echo, {"b@h"})
    assert caller.call("b@h", "m.f", (1, "x"), {"k": 2}, 5.0) == ("b@h", "m.f", (1, "x"), {"k": 2})


def test_call_to_self_runs_locally() -> None:
    caller = make_caller(echo, set())
    assert caller.call("a@h", "m.f", (1,), {}, 5.0) == ("local", (1,))


def test_call_to_unconnected_node_fails_at_once() -> None:
    caller = make_caller(echo, set())
    with pytest.raises(NodeDown, match="not connected"):
        caller.call("b@h", "m.f", (), {}, 5.0)


def test_unencodable_argument_fails_at_the_caller_and_sends_nothing() -> None:
    sent: list[str] = []
    caller = make_caller(lambda t, m: sent.append(t), {"b@h"})  # type: ignore[func-returns-value]
    with pytest.raises(EncodeError):
        caller.call("b@h", "m.f", (threading.Lock(),), {}, 5.0)
    assert sent == []


def test_call_without_reply_times_out() -> None:
    caller = make_caller(lambda t, m: None, {"b@h"})
    with pytest.raises(CallTimeout, match=r"m\.f on b@h timed out"):
        caller.call("b@h", "m.f", (), {}, 0.05)


def test_node_down_fails_calls_in_flight_promptly() -> None:
    caller = make_caller(lambda t, m: None, {"b@h"})
    thread, outcome = start_waiting_call(caller)
    caller.node_down("b@h")
    thread.join(5)
    assert len(outcome) == 1 and isinstance(outcome[0], NodeDown)


def test_reply_from_another_node_is_ignored() -> None:
    caller = make_caller(lambda t, m: None, {"b@h"})
    thread, outcome = start_waiting_call(caller, timeout=5.0)
    _, call_id = next(iter(caller._pending._calls))
    caller.on_reply("c@h", messages.ok_reply(call_id, "spoofed"))
    caller.on_reply("b@h", messages.ok_reply(call_id, "real"))
    thread.join(5)
    assert outcome == ["real"]


def test_multicall_splits_results_and_bad_nodes() -> None:
    def answer(target: str, message: dict[str, Any]) -> dict[str, Any] | None:
        if target == "c@h":
            return messages.exception_reply(message["id"], ValueError("boom"))
        if target == "d@h":
            return None
        return messages.ok_reply(message["id"], target)

    caller = make_caller(answer, {"b@h", "c@h", "d@h"})
    results, bad = caller.multicall(["a@h", "b@h", "c@h", "d@h", "e@h"], "m.f", (), {}, 0.2)
    assert results == {"a@h": ("local", ()), "b@h": "b@h"}
    assert isinstance(bad["c@h"], RemoteError) and bad["c@h"].exc_type == "ValueError"
    assert isinstance(bad["d@h"], CallTimeout)
    assert isinstance(bad["e@h"], NodeDown)


def test_close_fails_every_waiting_call_with_node_stopped() -> None:
    caller = make_caller(lambda t, m: None, {"b@h"})
    thread, outcome = start_waiting_call(caller)
    caller.close()
    thread.join(5)
    assert isinstance(outcome[0], NodeStopped) and not isinstance(outcome[0], NodeDown)
    assert outcome[0].node == "a@h"


def test_calls_after_close_fail_at_once_with_node_stopped() -> None:
    caller = make_caller(echo, {"b@h"})
    caller.close()
    with pytest.raises(NodeStopped):
        caller.call("b@h", "m.f", (), {}, 5.0)
    with pytest.raises(NodeStopped):
        caller.cast("b@h", "m.f", (), {}, 5.0)
    results, bad = caller.multicall(["a@h", "b@h"], "m.f", (), {}, 5.0)
    assert results == {} and all(isinstance(e, NodeStopped) for e in bad.values())


class FakeLine:
    """A calling thread's line: frames sent are answered by ``answer`` into its inbox."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.inbox: list[bytes] = []
        self.arrived = threading.Event()

    def send(self, data: bytes) -> None:
        message = decode_frame(data)
        reply = self.answer("b@h", message)
        if reply is not None:
            self.inbox.append(encode_frame(reply))
            self.arrived.set()

    def recv(self, timeout: float) -> bytes | None:
        if not self.inbox and not self.arrived.wait(timeout):
            return None
        self.arrived.clear()
        return self.inbox.pop(0) if self.inbox else None


def make_line_caller(line: FakeLine) -> Caller:
    return Caller("a@h", FakePeers({"b@h"}, line=line))


def test_call_on_a_line_returns_the_reply_read_by_the_calling_thread() -> None:
    caller = make_line_caller(FakeLine(echo))
    assert caller.call("b@h", "m.f", (1,), {}, 5.0) == ("b@h", "m.f", (1,), {})
    assert len(caller._pending) == 0


def test_line_skips_a_late_reply_to_an_earlier_call() -> None:
    line = FakeLine(echo)
    line.inbox.append(encode_frame(messages.ok_reply(999, "stale")))
    caller = make_line_caller(line)
    assert caller.call("b@h", "m.f", (), {}, 5.0)[0] == "b@h"


def test_line_call_without_reply_times_out() -> None:
    caller = make_line_caller(FakeLine(lambda t, m: None))
    with pytest.raises(CallTimeout):
        caller.call("b@h", "m.f", (), {}, 0.1)
    assert len(caller._pending) == 0


def test_line_call_fails_promptly_when_the_node_goes_down() -> None:
    caller = make_line_caller(FakeLine(lambda t, m: None))
    thread, outcome = start_waiting_call(caller)
    caller.node_down("b@h")
    thread.join(5)
    assert not thread.is_alive() and isinstance(outcome[0], NodeDown)


def test_multicall_on_lines_collects_every_reply() -> None:
    caller = make_line_caller(FakeLine(echo))
    results, bad = caller.multicall(["b@h", "c@h"], "m.f", (), {}, 1.0)
    assert list(results) == ["b@h"] and isinstance(bad["c@h"], NodeDown)


def test_multicall_encodes_once_one_id_for_every_target_and_calls_duplicates_once() -> None:
    sent: list[tuple[str, bytes]] = []
    caller = Caller("a@h", FakePeers({"b@h", "c@h"}, send=lambda t, d: sent.append((t, d))))
    caller.multicall(["b@h", "c@h", "b@h"], "m.f", (1,), {}, 0.05)
    assert [target for target, _ in sent] == ["b@h", "c@h"]
    assert sent[0][1] is sent[1][1]  # the same frame, encoded once
    assert decode_frame(sent[0][1])["id"] > 0
    assert len(caller._pending) == 0


def test_multicall_reply_settles_only_the_call_to_its_sender() -> None:
    """Every target's call has the same id: a reply counts for the node that sent it."""
    sent: list[dict[str, Any]] = []
    caller = Caller(
        "a@h", FakePeers({"b@h", "c@h"}, send=lambda t, d: sent.append(decode_frame(d)))
    )
    outcome: list[Any] = []
    thread = threading.Thread(
        target=lambda: outcome.append(caller.multicall(["b@h", "c@h"], "m.f", (), {}, 30.0))
    )
    thread.start()
    wait_until(lambda: len(caller._pending) == 2, timeout=5)
    call_id = sent[0]["id"]
    caller.on_reply("c@h", messages.ok_reply(call_id, "from c"))
    caller.on_reply("c@h", messages.ok_reply(call_id, "c again"))  # a duplicate: ignored
    wait_until(lambda: len(caller._pending) == 1, timeout=5)
    caller.node_down("b@h")
    thread.join(5)
    results, bad = outcome[0]
    assert results == {"c@h": "from c"}
    assert isinstance(bad["b@h"], NodeDown)


def test_multicall_with_an_unencodable_argument_raises_and_leaves_nothing_pending() -> None:
    sent: list[str] = []
    caller = Caller("a@h", FakePeers({"b@h"}, send=lambda t, d: sent.append(t)))
    with pytest.raises(EncodeError):
        caller.multicall(["b@h", "c@h"], "m.f", (threading.Lock(),), {}, 5.0)
    assert sent == [] and len(caller._pending) == 0
    # No target to run it on: nothing is encoded, each target is reported.
    results, bad = caller.multicall(["c@h"], "m.f", (threading.Lock(),), {}, 5.0)
    assert results == {} and isinstance(bad["c@h"], NodeDown)


def test_multicall_to_this_node_on_a_stopped_node_reports_node_stopped() -> None:
    def run_local(message: dict[str, Any], deliver: Deliver) -> None:
        raise NodeStopped("a@h", "node a@h has stopped")

    caller = Caller("a@h", FakePeers({"b@h"}, run_local=run_local, line=FakeLine(echo)))
    results, bad = caller.multicall(["a@h", "b@h"], "m.f", (), {}, 1.0)
    assert list(results) == ["b@h"] and isinstance(bad["a@h"], NodeStopped)


def test_multicall_on_lines_times_out_per_target_and_leaves_nothing_pending() -> None:
    caller = make_line_caller(FakeLine(lambda t, m: None))
    results, bad = caller.multicall(["b@h"], "m.f", (), {}, 0.05)
    assert results == {} and isinstance(bad["b@h"], CallTimeout)
    assert len(caller._pending) == 0
