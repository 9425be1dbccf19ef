"""The layers a node starts once it has joined: settings, deploy, the console (no I/O here).

Each extension is a plain function ``start(node)`` that may return a callable
run when the node stops (in reverse order). They are imported here, so tools
and readers follow them like any other call.
"""

from __future__ import annotations

from collections.abc import Callable

from hotmesh import settings
from hotmesh._console.front import start_console
from hotmesh._runtime import NodeLike
from hotmesh.deploy import _startup as deploy_startup

Extension = Callable[[NodeLike], Callable[[], None] | None]

EXTENSIONS: tuple[Extension, ...] = (
    settings._start,
    deploy_startup.start,
    start_console,
)
"""Run in this order at start; their stop callables run in the reverse order."""


def start_extensions(node: NodeLike, stops: list[Callable[[], None]]) -> None:
    """Run every extension for ``node``, appending each stop callable to ``stops`` at once.

    If one fails, ``stops`` already holds those of the extensions started
    before it (the node runs them as it stops).
    """
    for start in EXTENSIONS:
        stop = start(node)
        if callable(stop):
            stops.append(stop)
