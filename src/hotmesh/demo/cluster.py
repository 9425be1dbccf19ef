"""A local demo cluster: node processes running the demo service, with live client traffic.

Starts real ``hotmesh node`` processes (through ``hotmesh.testing.LocalCluster``),
each with its own release directory holding demokv v1, and keeps client connections
busy with the traffic generator. Does process, file and network I/O (loopback only).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hotmesh._paths import state_root
from hotmesh.demo.app import SERVICE
from hotmesh.demo.sources import install_release
from hotmesh.demo.traffic import Traffic, TrafficReport
from hotmesh.testing import LocalCluster

APP = "hotmesh.demo.app:start"


class DemoCluster:
    """``size`` demo nodes named ``{prefix}1..N`` with ``connections`` clients each.

    The nodes register in this user's state dir, so ``hotmesh attach demo1`` finds
    them (with ``$HOTMESH_COOKIE_FILE`` set to ``cookie_file``). ``ship(version)`` copies a
    release onto the nodes' disks ("new code reaches disk": nothing is loaded until
    an engineer upgrades). ``stop()`` stops the traffic first, then the nodes, and
    returns the traffic report.

    Example::

        demo = DemoCluster(3).start()
        demo.ship("v2")                       # then upgrade from a console
        print(demo.status_line())
        report = demo.stop()
    """

    def __init__(
        self,
        size: int = 3,
        *,
        connections: int = 2,
        prefix: str = "demo",
        tick: float = 1.0,
        interval: float = 0.05,
        directory: str | Path | None = None,
    ) -> None:
        self.size = size
        self.connections = connections
        self.interval = interval
        self._own_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="hotmesh-demo-"))
        self.release_dirs = [self.directory / "releases" / f"{prefix}{i + 1}" for i in range(size)]
        self.cluster = LocalCluster(
            size,
            prefix=prefix,
            tick=tick,
            release=lambda i: self.release_dirs[i],
            app=APP,
            env={"HOTMESH_STATE_DIR": str(state_root())},
            directory=self.directory / "cluster",
        )
        self.ports: list[int] = []
        self.traffic: Traffic | None = None
        self._report = TrafficReport()

    @property
    def names(self) -> list[str]:
        """The nodes' full names."""
        return self.cluster.names

    @property
    def cookie_file(self) -> Path:
        """The cluster's cookie file (for ``HOTMESH_COOKIE_FILE=... hotmesh attach``)."""
        return self.cluster.cookie_file

    def start(self, *, timeout: float = 20.0) -> DemoCluster:
        """Install v1 everywhere, start the nodes and the traffic; return self.

        Raises:
            RuntimeError: a node did not come up (its stderr is in the message).
            TimeoutError: the mesh did not form within ``timeout``.
        """
        for release in self.release_dirs:
            install_release("v1", release)
        try:
            self.cluster.start()
            self.cluster.wait_full_mesh(timeout=timeout)
            self.ports = [
                int(self.cluster.node(i).call("hotmesh.demo.app.port")) for i in range(self.size)
            ]
            endpoints = [("127.0.0.1", port) for port in self.ports]
            self.traffic = Traffic(
                endpoints, per_endpoint=self.connections, interval=self.interval
            ).start()
        except BaseException:
            self.stop()
            raise
        return self

    def ship(self, version: str, nodes: list[int] | None = None) -> None:
        """Copy release ``version`` onto the disk of ``nodes`` (indexes; default all)."""
        for i in range(self.size) if nodes is None else nodes:
            install_release(version, self.release_dirs[i])

    def status_line(self) -> str:
        """One line: the traffic's counts and the reply formats seen so far."""
        if self.traffic is None:
            return "demo not started"
        return self.traffic.snapshot().summary()

    def node_status(self) -> list[str]:
        """One line per node: its release version and its demo service's version."""
        lines = []
        for i, name in enumerate(self.names):
            node = self.cluster.node(i)
            try:
                version = node.call("hotmesh.deploy.node_version")
                status = node.call("hotmesh.service._remote.status", SERVICE, None, 5.0)
                lines.append(
                    f"{name}: {version}, service {SERVICE} {status['status']} "
                    f"on {status['vsn']}, {node.call('hotmesh.demo.app.connections')} clients"
                )
            except Exception as exc:  # a status line must not stop the demo
                lines.append(f"{name}: unreachable ({type(exc).__name__}: {exc})")
        return lines

    def stop_traffic(self) -> TrafficReport:
        """Stop the clients (closing their connections); the final traffic report."""
        report = self.traffic.stop() if self.traffic is not None else TrafficReport()
        self.traffic = None
        self._report = report
        return report

    def stop(self) -> TrafficReport:
        """Stop the traffic, then the nodes; remove the demo's files; return the report."""
        report = self.stop_traffic() if self.traffic is not None else self._report
        self.cluster.close(failed=not report.ok)
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)
        return report
