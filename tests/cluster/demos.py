"""The demo cluster the proof tests share: four nodes on v1 under live traffic with v2
on every disk (``demo.cluster.cli(...)`` runs the ``hotmesh`` command against it).
Starts processes on 127.0.0.1."""

from __future__ import annotations

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
