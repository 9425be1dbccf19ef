"""A remote call whose worker a purge stops still gets its reply, at once."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import hotmesh.code as code
from hotmesh._errors import RemoteError
from hotmesh._rpc import messages
from hotmesh._rpc.dispatch import Dispatcher
from hotmesh._rpc.workers import WorkerPool

from .conftest import Pkg

LOOPER = """
import threading
STARTED = threading.Event()
def spin(stop):
    STARTED.set()
    while not stop.is_set():
        pass
"""


def test_call_stopped_by_a_purge_is_answered_with_code_purged(pkg: Pkg) -> None:
    pkg.write("a", LOOPER)
    a = pkg.imp("a")
    stop = threading.Event()
    answered = threading.Event()
    replies: list[dict[str, Any]] = []

    def send(sender: bytes, reply: dict[str, Any]) -> None:
        replies.append(reply)
        answered.set()

    dispatcher = Dispatcher(None, WorkerPool(1), send)
    dispatcher.handle(b"client", messages.call_message(1, f"{pkg.mod('a')}.spin", (stop,), {}, 60))
    try:
        assert a.STARTED.wait(5)
        pkg.write("a", LOOPER + "\nVERSION = 2\n")
        code.load_file(pkg.mod("a"))
        assert code.purge(pkg.mod("a"), timeout=5).killed
        assert answered.wait(1.0)
    finally:
        stop.set()
    with pytest.raises(RemoteError) as info:
        messages.result_of(replies[0], "b@h", "spin")
    assert info.value.exc_type == "hotmesh._errors.CodePurged"
    assert "purge" in info.value.message
