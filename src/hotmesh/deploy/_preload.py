"""Loading the code server's parts an upgrade uses once a node with a release has
settled, on a thread of its own, so that its first upgrade does not import them
while the node serves clients. No I/O but the turn's lock file."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from hotmesh._gil import machine_turn
from hotmesh._paths import state_root
from hotmesh.code.server import load_parts

log = logging.getLogger("hotmesh.deploy")

SETTLE_TICKS = 2.0  # ticks after the start: the mesh has formed, the app is up


def start(tick: float, load: Callable[[], None] = load_parts) -> Callable[[], None]:
    """``load()`` the parts ``SETTLE_TICKS`` ticks from now; returns the stop callable.

    Not at the start: every node of a fleet would pay it while the mesh forms
    (issue 10 counts a start's CPU and memory). The load takes a machine-wide
    turn (an upgrade's): nodes started together do not all load at once, nor
    beside an upgrade's steps. Stopping before the load skips it.
    """
    stopping = threading.Event()

    def run() -> None:
        if stopping.wait(SETTLE_TICKS * tick):
            return
        try:
            with machine_turn(state_root() / "turns", "upgrade"):
                if not stopping.is_set():
                    load()
        except Exception:  # the first upgrade imports them then, and says what fails
            log.debug("loading the code server's parts failed", exc_info=True)

    thread = threading.Thread(target=run, name="hotmesh-preload", daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        if thread is not threading.current_thread():
            thread.join(timeout=5.0)

    return stop
