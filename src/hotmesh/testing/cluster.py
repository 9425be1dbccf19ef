"""LocalCluster: real ``hotmesh node`` processes on 127.0.0.1 for tests (processes, files)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import hotmesh
from hotmesh._paths import full_node_name

ReleaseSpec = str | os.PathLike[str] | Callable[[int], str | os.PathLike[str] | None] | None


class NodeProcess:
    """One ``hotmesh node`` process of a LocalCluster.

    Attributes:
        index: position in the cluster.
        name: full node name (``n1@host``).
        endpoint: where it listens (changes if restarted on a new port).
        pid: process id of the current incarnation.
        state_dir: its state directory.
        stderr_path: file collecting its stderr (every incarnation, appended).
        stdout_lines: lines it printed on stdout (READY included).
    """

    def __init__(self, cluster: LocalCluster, index: int, short_name: str) -> None:
        self.cluster = cluster
        self.index = index
        self.name = full_node_name(short_name)
        self.short_name = short_name
        self.endpoint = ""
        self.pid = 0
        self.state_dir = cluster.directory / "nodes" / self.name
        self.stderr_path = cluster.directory / "logs" / f"{self.name}.stderr"
        self.stdout_lines: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._conn: Any = None

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "not running"
        return f"<NodeProcess {self.name} {self.endpoint} pid={self.pid} {state}>"

    def is_running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the process and reap it (no goodbye to the mesh)."""
        self._signal(signal.SIGKILL)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the process and wait for it to exit (SIGKILL after ``timeout``)."""
        self._signal(signal.SIGTERM, timeout)

    def restart(self, *, same_port: bool = True, timeout: float | None = None) -> None:
        """Start the node again under the same name (stopping it first if it runs).

        With ``same_port`` it listens on its previous port, else on a new one.
        Its seeds are the endpoints of the other running nodes, so it rejoins.
        """
        if self.is_running():
            self.stop()
        listen = self.endpoint if same_port and self.endpoint else "tcp://127.0.0.1:0"
        self._spawn(listen, self.cluster._seeds_for(self))
        self.wait_ready(timeout if timeout is not None else self.cluster.start_timeout)

    def call(self, fn: str, *args: Any, timeout: float = 5.0, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` on this node through a client connection."""
        from hotmesh._mesh.client import Connection
        from hotmesh._rpc import client_calls

        if self._conn is None:
            self._conn = Connection(self.endpoint, self.cluster.cookie)
        return client_calls.call(self._conn, fn, *args, timeout=timeout, **kwargs)

    def wait_ready(self, timeout: float) -> None:
        """Wait for the READY line; raise RuntimeError (with its stderr) if none comes."""
        if not self._ready.wait(timeout) or not self.endpoint:
            alive = self.is_running()
            self.kill()
            why = "did not print READY in time" if alive else "exited before READY"
            raise RuntimeError(f"node {self.name} {why}:\n{self.stderr_tail()}")

    def stderr_tail(self, lines: int = 40) -> str:
        """The last lines this node wrote on stderr."""
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # ---- internals -----------------------------------------------------
    def _spawn(self, listen: str, seeds: Sequence[str]) -> None:
        self._close_conn()
        self.endpoint = ""
        args = [sys.executable, "-m", "hotmesh", "node", "--name", self.short_name]
        args += ["--listen", listen, "--cookie-file", str(self.cluster.cookie_file)]
        args += ["--tick", str(self.cluster.tick), "--state-dir", str(self.state_dir)]
        for seed in seeds:
            args += ["--seed", seed]
        for root in self.cluster.code_roots:
            args += ["--code-root", str(root)]
        release = self.cluster._release_for(self.index)
        if release is not None:
            args += ["--release", str(release)]
        if self.cluster.app:
            args += ["--app", self.cluster.app]
        args += list(self.cluster.extra_args)
        self.stderr_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.stderr_path, "a") as stderr:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env=self.cluster._env(),
                # Die with the test process, however it ends (the parent thread
                # counts, so only when spawned from the main thread).
                preexec_fn=_die_with_parent if _on_main_thread() else None,
                # A session of its own: Ctrl-C in the terminal that started the
                # cluster (`hotmesh demo`) reaches that program, never the nodes.
                start_new_session=True,
            )
        # Replace the process before clearing the flag: the reader of a previous
        # process only acts while its process is the current one.
        with self._lock:
            self._proc = proc
            self._ready.clear()
        self.pid = proc.pid
        threading.Thread(
            target=self._read_stdout, args=(proc,), name=f"stdout-{self.name}", daemon=True
        ).start()

    def _read_stdout(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            self.stdout_lines.append(line)
            parts = line.split()
            if len(parts) == 3 and parts[0] == "READY":
                with self._lock:
                    if proc is self._proc:
                        self.name, self.endpoint = parts[1], parts[2]
                        self._ready.set()
        proc.stdout.close()
        with self._lock:
            if proc is self._proc:
                self._ready.set()  # EOF: wake wait_ready, which sees no endpoint

    def _signal(self, signum: int, timeout: float = 5.0) -> None:
        self._close_conn()
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _close_conn(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


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
    ) -> None:
        self.size = size
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
        fd = os.open(self.cookie_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.cookie + "\n")
        first, rest = self._nodes[0], self._nodes[1:]
        first._spawn("tcp://127.0.0.1:0", [])
        first.wait_ready(self.start_timeout)
        for node in rest:
            node._spawn("tcp://127.0.0.1:0", [first.endpoint])
        for node in rest:
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

    # ---- internals -----------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["HOTMESH_STATE_DIR"] = str(self.state_root)
        env["HOTMESH_COOKIE_FILE"] = str(self.cookie_file)
        env.pop("HOTMESH_COOKIE", None)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.extra_env)
        return env

    def _seeds_for(self, node: NodeProcess) -> list[str]:
        return [n.endpoint for n in self._nodes if n is not node and n.is_running()]

    def _release_for(self, index: int) -> str | None:
        release = self.release
        if callable(release):
            release = release(index)
        return None if release is None else str(release)


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the parent dies (Linux only)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
