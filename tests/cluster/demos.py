"""The demo cluster the proof tests share: four nodes on v1 under live traffic with v2
on every disk, and ``hotmesh run`` against it. Starts processes on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hotmesh.demo.cluster import DemoCluster
from tests.waiting import wait_until

V2_SNIPPET = Path(__file__).resolve().parents[2] / "snippets" / "examples" / "demo_v2_records.py"


@contextmanager
def v2_shipped(directory: Path, connections: int) -> Iterator[DemoCluster]:
    """4 demo nodes on v1 with ``connections`` clients each, v2 shipped to every disk.

    Waits for 64 v1 replies first; stops every node and client on the way out.
    """
    demo = DemoCluster(4, connections=connections, interval=0.005, directory=directory)
    demo.start()
    try:
        assert demo.traffic is not None
        wait_until(lambda: demo.traffic.snapshot().replies >= 64, timeout=15, message="v1 traffic")
        demo.ship("v2")
        yield demo
    finally:
        demo.stop()


def cli_env(demo: DemoCluster) -> dict[str, str]:
    """This process's environment with the demo's cookie, for the ``hotmesh`` command."""
    return dict(os.environ, HOTMESH_COOKIE_FILE=str(demo.cookie_file))


def hotmesh_run(
    demo: DemoCluster, argv: list[str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """``python -m hotmesh *argv`` against the demo, to completion, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "hotmesh", *argv],
        env=cli_env(demo),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
