"""jedi's warm-up: loaded in the background once per process when a console
attaches, in short GIL slices, with everything put back after."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

from hotmesh._console import completion
from hotmesh._console.client import ConsoleClient
from hotmesh._console.completion import CompletionService
from hotmesh.testing.fakes import FakeNode
from tests.waiting import wait_until


def test_warm_up_completes_once_in_the_background_then_puts_things_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(completion, "_warm_started", False)
    monkeypatch.setattr(completion, "jedi_ready", threading.Event())
    seen: list[tuple[str, float, bool, bool]] = []
    real = completion.complete

    def watched(namespace: dict[str, Any], code: str, pos: int) -> Any:
        pausing = any(isinstance(f, completion._PauseBeforeImports) for f in sys.meta_path)
        on_thread = threading.current_thread().name == "console-jedi-warmup"
        seen.append((code, sys.getswitchinterval(), pausing, on_thread))
        return real(namespace, code, pos)

    monkeypatch.setattr(completion, "complete", watched)
    interval, finders = sys.getswitchinterval(), list(sys.meta_path)

    completion.warm_up()
    completion.warm_up()  # once per process

    def warmed() -> bool:
        running = any(t.name == "console-jedi-warmup" for t in threading.enumerate())
        return bool(seen) and not running

    wait_until(warmed, timeout=60, message="warm-up done")
    assert completion.jedi_ready.is_set()
    assert [code for code, *_ in seen] == [code for code, _ in completion._WARM_UP]
    assert all(slice_ <= 0.0005 and pausing and mine for _, slice_, pausing, mine in seen)
    assert sys.getswitchinterval() == interval and sys.meta_path == finders
    # A first Tab now finds jedi loaded: the warm cap applies.
    assert real({"warm_up_value": 1}, "warm_up_v", 9) == [("warm_up_value", -9, "instance")]


def test_only_an_interactive_console_warms_completion_up(
    fake_node: FakeNode, server: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(CompletionService, "warm_up", lambda self: calls.append(1))
    clients: list[ConsoleClient] = []

    def open_as(via: str) -> Callable[[], bool]:
        client = ConsoleClient(fake_node.connect(), ping_interval=0.1, silence_limit=5.0)
        clients.append(client)
        client.open(via=via)
        return lambda: bool(calls)

    try:
        open_as("eval")
        open_as("run")
        ran = clients[-1].execute("1")  # the session's start has run by its first statement
        assert ran.ok and calls == []
        wait_until(open_as("attach"), timeout=10, message="warm-up asked for")
        assert calls == [1]
    finally:
        for client in clients:
            client.close(timeout=0.5)
