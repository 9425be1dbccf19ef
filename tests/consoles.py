"""Driving a console client in tests: run a cell and collect its output, or start one
in the background. No I/O of its own beyond the client's."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from hotmesh._console.client import ConsoleClient, Outcome
from tests.waiting import wait_until


def run(client: ConsoleClient, code: str, **kwargs: Any) -> tuple[Outcome, str]:
    """Execute ``code`` in the client's session; its outcome and all its output, joined."""
    chunks: list[str] = []
    outcome = client.execute(code, on_output=lambda name, text: chunks.append(text), **kwargs)
    return outcome, "".join(chunks)


def in_background(client: ConsoleClient, code: str, chunks: list[str]) -> Future[Outcome]:
    """Start executing ``code`` on a thread; its output is appended to ``chunks`` as it comes."""
    pool = ThreadPoolExecutor(1)
    future = pool.submit(client.execute, code, on_output=lambda n, t: chunks.append(t))
    pool.shutdown(wait=False)
    return future


def started(
    client: ConsoleClient, code: str, *, timeout: float = 5.0
) -> tuple[Future[Outcome], list[str]]:
    """Start ``code``, which prints ``go`` before it blocks; return once ``go`` arrived.

    Returns the execution's future and the list its output goes on arriving in.
    """
    chunks: list[str] = []
    future = in_background(client, code, chunks)
    wait_until(lambda: "go" in "".join(chunks), timeout=timeout, message="the cell printed go")
    return future, chunks
