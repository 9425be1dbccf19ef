"""LocalCluster: real ``hotmesh node`` processes on 127.0.0.1 for tests (processes, files)."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import hotmesh
from hotmesh.testing.process import NodeProcess

ReleaseSpec = str | os.PathLike[str] | Callable[[int], str | os.PathLike[str] | None] | None


class LocalCluster:
    """N real ``hotmesh node`` processes on 127.0.0.1 that form one mesh.

    Each node listens on a random port (read from its READY line), shares a
    fresh cookie file (mode 0600) in the cluster's temp directory, and gets its
    own state dir. Node 0 starts first; the others join through it. Use it as a
    context manager: on exit every process it started is stopped (SIGTERM, then
    SIGKILL), even when the block failed, in which case each node's stderr is
    printed to help the diagnosis.

    Example::

        with LocalCluster(3, tick=1.0) as cluster:
            cluster.wait_full_mesh()
            client = cluster.client()          # an in-process Node joined to the mesh
            client.call(cluster.names[1], "os.getpid")
            cluster.node(1).kill()             # SIGKILL
            cluster.node(1).restart()          # same name, same port; rejoins

    Args:
        size: number of nodes (named ``{prefix}1`` ... ``{prefix}N``).
        prefix: node name prefix.
        tick: failure detection time handed to every node.
        code_roots: ``--code-root`` of every node.
        release: ``--release`` of every node: one directory, or a function of
            the node index returning a directory (or None).
        app: ``--app pkg.mod:func`` of every node.
        env: extra environment variables for the node processes.
        extra_args: more ``hotmesh node`` arguments.
        directory: where the cookie, state dirs and logs go (default: a new
            temp dir, removed on exit unless the block failed).
        start_timeout: seconds to wait for each READY line.
        wrapper: a command prefix for node ``i``'s process (e.g. ``["ip", "netns",
            "exec", ns]``), given ``i``.

    Attributes:
        directory, cookie_file, cookie: the cluster's files and secret.
        state_root: HOTMESH_STATE_DIR of the nodes (the per-host registry lives
            there; inherited from this process when set, so ``hotmesh ls`` and
            ``Connection`` lookups see the nodes).
    """

    def __init__(
        self,
        size: int = 3,
        *,
        prefix: str = "n",
        tick: float = 1.0,
        code_roots: Iterable[str | os.PathLike[str]] = (),
        release: ReleaseSpec = None,
        app: str | None = None,
        env: Mapping[str, str] | None = None,
        extra_args: Iterable[str] = (),
        directory: str | os.PathLike[str] | None = None,
        start_timeout: float = 20.0,
        wrapper: Callable[[int], Sequence[str]] | None = None,
    ) -> None:
        self.size = size
        self._wrapper: Callable[[int], Sequence[str]] = wrapper or (lambda index: ())
        self.tick = tick
        self.code_roots = [str(r) for r in code_roots]
        self.release = release
        self.app = app
        self.extra_env = dict(env or {})
        self.extra_args = list(extra_args)
        self.start_timeout = start_timeout
        self._own_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="hotmesh-cluster-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.cookie = "cluster-" + secrets.token_urlsafe(24)
        self.cookie_file = self.directory / "cookie"
        state = os.environ.get("HOTMESH_STATE_DIR")
        self.state_root = Path(state) if state else self.directory / "state"
        self._nodes = [NodeProcess(self, i, f"{prefix}{i + 1}") for i in range(size)]
        self._clients: list[hotmesh.Node] = []
        self._started = False

    # ---- context manager -----------------------------------------------
    def __enter__(self) -> LocalCluster:
        try:
            self.start()
        except BaseException:
            self.close(failed=True)
            raise
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.close(failed=exc_type is not None)

    # ---- queries -------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Full names of the nodes, in index order."""
        return [n.name for n in self._nodes]

    @property
    def endpoints(self) -> list[str]:
        """Endpoints of the nodes, in index order."""
        return [n.endpoint for n in self._nodes]

    def node(self, index: int) -> NodeProcess:
        """The handle of node ``index``."""
        return self._nodes[index]

    def logs(self) -> str:
        """Every node's stderr, one section per node."""
        return "\n".join(
            f"----- {n.name} (stderr) -----\n{n.stderr_tail(200)}" for n in self._nodes
        )

    # ---- actions -------------------------------------------------------
    def start(self) -> LocalCluster:
        """Write the cookie and start every node; return once all printed READY."""
        if self._started:
            return self
        self._started = True
        self._write_cookie()
        first, rest = self._nodes[0], self._nodes[1:]
        first._spawn("tcp://127.0.0.1:0", [])
        first.wait_ready(self.start_timeout)
        for node in rest:
            node._spawn("tcp://127.0.0.1:0", [first.endpoint])
        for node in rest:
            node.wait_ready(self.start_timeout)
        return self

    def start_all(
        self,
        seeds: Callable[[int, Sequence[str]], Iterable[str]],
        *,
        listen: Sequence[str] | None = None,
    ) -> LocalCluster:
        """Start every node at the same moment; return once all printed READY.

        Node ``i`` listens on ``listen[i]`` (default: 127.0.0.1 ports chosen up
        front) and gets the seeds ``seeds(i, endpoints)``, so any topology of
        seeds can be started at once: ``lambda i, eps: eps[i - 1:i]`` is a chain.
        """
        if self._started:
            raise RuntimeError("the cluster is already started")
        self._started = True
        self._write_cookie()
        endpoints = list(listen) if listen is not None else _free_endpoints(self.size)
        for i, node in enumerate(self._nodes):
            node._spawn(endpoints[i], list(seeds(i, endpoints)))
        for node in self._nodes:
            node.wait_ready(self.start_timeout)
        return self

    def client(self, name: str | None = None) -> hotmesh.Node:
        """An in-process Node joined to the cluster (stopped with the cluster).

        It is a mesh member: the cluster's nodes list it among their peers.
        """
        name = name or f"client{len(self._clients) + 1}-{os.getpid()}"
        seeds = [n.endpoint for n in self._nodes if n.is_running()]
        node = hotmesh.start(
            name,
            seeds=seeds,
            cookie=self.cookie,
            tick=self.tick,
            state_dir=self.directory / "clients" / name,
        )
        self._clients.append(node)
        running = [n.name for n in self._nodes if n.is_running()]
        if not node.wait_connected(running, timeout=self.start_timeout):
            missing = sorted(set(running) - set(node.nodes()))
            raise RuntimeError(f"client {node.name} did not connect to {missing}")
        return node

    def wait_full_mesh(self, timeout: float = 10.0) -> None:
        """Wait until every running node lists every other running node.

        Raises:
            TimeoutError: the mesh was not full within ``timeout`` (says who misses whom).
        """
        deadline = time.monotonic() + timeout
        missing: dict[str, list[str]] = {}
        while True:
            running = [n for n in self._nodes if n.is_running()]
            names = {n.name for n in running}
            missing = {}
            for node in running:
                try:
                    peers = set(node.call("hotmesh._node.connected_nodes", timeout=1.0))
                except hotmesh.HotmeshError:
                    peers = set()
                lacking = sorted(names - peers - {node.name})
                if lacking:
                    missing[node.name] = lacking
            if not missing:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"mesh not full after {timeout}s: {missing}")
            time.sleep(0.05)  # polling interval while waiting on a deadline

    def close(self, *, failed: bool = False) -> None:
        """Stop every client node and node process (idempotent)."""
        for client in self._clients:
            client.stop()
        self._clients.clear()
        for node in self._nodes:
            node._close_conn()
            if node.is_running() and node._proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    node._proc.send_signal(signal.SIGTERM)
        for node in self._nodes:
            node._signal(signal.SIGTERM, timeout=3.0)  # waits, then SIGKILL
        if failed:
            print(self.logs(), file=sys.stderr)
        elif self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    # ---- the hotmesh command --------------------------------------------
    def env(self, **overrides: str) -> dict[str, str]:
        """The environment in which a ``hotmesh`` command reaches these nodes by name.

        This process's environment with the cluster's state dir (its registry)
        and cookie file, ``HOTMESH_COOKIE`` removed, and
        ``PROMPT_TOOLKIT_NO_CPR=1`` (a terminal under test answers no cursor
        queries); then ``overrides``. For ``pexpect.spawn(..., env=cluster.env())``.
        """
        env = dict(os.environ)
        env.pop("HOTMESH_COOKIE", None)
        env["HOTMESH_STATE_DIR"] = str(self.state_root)
        env["HOTMESH_COOKIE_FILE"] = str(self.cookie_file)
        env["PROMPT_TOOLKIT_NO_CPR"] = "1"
        env.update(overrides)
        return env

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run ``python -m hotmesh *args`` against these nodes to its end, output captured.

        No stdin; ``env()``'s environment.

        Raises:
            subprocess.TimeoutExpired: it ran longer than ``timeout`` seconds (it is killed).
        """
        return subprocess.run(
            [sys.executable, "-m", "hotmesh", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    # ---- for the node processes -----------------------------------------
    def node_env(self) -> dict[str, str]:
        """The environment of the node processes (``env`` is the command's)."""
        env = dict(os.environ)
        env["HOTMESH_STATE_DIR"] = str(self.state_root)
        env["HOTMESH_COOKIE_FILE"] = str(self.cookie_file)
        env.pop("HOTMESH_COOKIE", None)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.extra_env)
        return env

    def command_prefix(self, index: int) -> Sequence[str]:
        """The command prefix of node ``index`` (the ``wrapper`` option)."""
        return self._wrapper(index)

    def _write_cookie(self) -> None:
        fd = os.open(self.cookie_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.cookie + "\n")

    def seeds_for(self, node: NodeProcess) -> list[str]:
        """The endpoints ``node`` joins through: every other running node's."""
        return [n.endpoint for n in self._nodes if n is not node and n.is_running()]

    def release_for(self, index: int) -> str | None:
        """The ``--release`` directory of node ``index`` (None: no release)."""
        release = self.release
        if callable(release):
            release = release(index)
        return None if release is None else str(release)


def _free_endpoints(count: int) -> list[str]:
    """``count`` loopback endpoints on ports free right now (held open together)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [f"tcp://127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
