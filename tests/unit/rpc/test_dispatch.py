"""Resolving dotted paths and running call messages on the target (no sockets)."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest

from hotmesh._errors import NoSuchFunction, RemoteError
from hotmesh._rpc import messages
from hotmesh._rpc.dispatch import Dispatcher, resolve
from hotmesh._rpc.workers import WorkerPool
from hotmesh._runtime import CURRENT_NODE

VALUE = 42


def which_node() -> Any:
    return CURRENT_NODE.get(None)


def test_resolve_finds_module_functions_and_imports_modules() -> None:
    assert resolve("os.getpid") is os.getpid
    assert resolve("os.path.join") is os.path.join
    assert resolve("len") is len
    assert resolve("tests.unit.rpc.test_dispatch:which_node") is which_node


def test_resolve_reaches_a_function_replaced_in_an_imported_module(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert resolve("tests.unit.rpc.test_dispatch.which_node") is which_node

    def replaced() -> str:
        return "new"

    monkeypatch.setattr(f"{__name__}.which_node", replaced)
    assert resolve("tests.unit.rpc.test_dispatch.which_node") is replaced


def test_resolve_finds_methods_through_classes() -> None:
    assert resolve("collections.OrderedDict.fromkeys")(["a"]) == {"a": None}


def test_resolve_refuses_missing_and_non_callable_names() -> None:
    with pytest.raises(NoSuchFunction, match="no function"):
        resolve("os.no_such_function")
    with pytest.raises(NoSuchFunction, match="no function"):
        resolve("no_such_package_xyz.f")
    with pytest.raises(NoSuchFunction, match="not a function"):
        resolve("tests.unit.rpc.test_dispatch.VALUE")


def make_dispatcher(sent: list[tuple[bytes, dict[str, Any]]]) -> Dispatcher:
    return Dispatcher("node-object", WorkerPool(4), lambda s, m: sent.append((s, m)))


def test_execute_returns_value_and_sets_current_node() -> None:
    dispatcher = make_dispatcher([])
    reply = dispatcher.execute(
        messages.call_message(7, "tests.unit.rpc.test_dispatch.which_node", (), {}, 5.0)
    )
    assert reply == {"t": "reply", "id": 7, "ok": True, "v": "node-object"}
    assert CURRENT_NODE.get(None) is None


def test_execute_turns_exceptions_into_error_replies_with_traceback() -> None:
    dispatcher = make_dispatcher([])
    reply = dispatcher.execute(messages.call_message(1, "int", ("x",), {}, 5.0))
    with pytest.raises(RemoteError) as info:
        messages.result_of(reply, "b@h", "int")
    assert info.value.exc_type == "ValueError"
    assert "invalid literal" in info.value.message
    assert "Traceback" in info.value.traceback
    assert info.value.node == "b@h"


def test_execute_reports_unknown_functions() -> None:
    reply = make_dispatcher([]).execute(messages.call_message(1, "os.nope", (), {}, 5.0))
    with pytest.raises(NoSuchFunction, match=r"os\.nope"):
        messages.result_of(reply, "b@h", "os.nope")


def test_expired_request_is_dropped_without_reply() -> None:
    sent: list[tuple[bytes, dict[str, Any]]] = []
    dispatcher = make_dispatcher(sent)
    message = messages.call_message(1, "len", ("ab",), {}, 5.0)
    message["dl"] -= 10.0
    dispatcher.handle(b"client", message)
    assert dispatcher.expired == 1
    assert sent == []


def test_handled_call_replies_through_send_from_a_worker() -> None:
    done = threading.Event()
    sent: list[tuple[bytes, dict[str, Any]]] = []

    def send(sender: bytes, reply: dict[str, Any]) -> None:
        sent.append((sender, reply))
        done.set()

    dispatcher = Dispatcher(None, WorkerPool(2), send)
    dispatcher.handle(b"client", messages.call_message(3, "len", ("abc",), {}, 5.0))
    assert done.wait(5)
    assert sent == [(b"client", {"t": "reply", "id": 3, "ok": True, "v": 3})]


def test_cast_sends_no_reply() -> None:
    ran = threading.Event()
    sent: list[Any] = []
    dispatcher = Dispatcher(None, WorkerPool(2), lambda s, m: sent.append(m))
    message = messages.call_message(3, "threading.Event.set", (ran,), {}, 5.0, reply=False)
    dispatcher.handle(b"client", message)
    assert ran.wait(5)
    assert sent == []


@pytest.mark.parametrize("exc", [SystemExit(2), KeyboardInterrupt(), GeneratorExit()])
def test_call_ending_in_a_base_exception_gets_an_error_reply(exc: BaseException) -> None:
    done = threading.Event()
    sent: list[dict[str, Any]] = []

    def send(sender: bytes, reply: dict[str, Any]) -> None:
        sent.append(reply)
        done.set()

    def end() -> None:
        raise exc

    dispatcher = Dispatcher(None, WorkerPool(1), send)
    dispatcher.handle(b"client", messages.call_message(5, end, (), {}, 20.0))
    assert done.wait(1.0)
    with pytest.raises(RemoteError) as info:
        messages.result_of(sent[0], "b@h", "end")
    assert info.value.exc_type == type(exc).__name__
    assert type(info.value.exc) is type(exc)
