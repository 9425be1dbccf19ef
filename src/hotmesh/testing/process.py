"""NodeProcess: one ``hotmesh node`` process of a LocalCluster (processes, files).

It starts the process with the cluster's options, reads its READY line for
the endpoint, signals, restarts and calls it through a client connection.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from hotmesh._paths import full_node_name


class Cluster(Protocol):
    """What a node process needs from its cluster (``LocalCluster`` is one)."""

    directory: Path
    cookie: str
    cookie_file: Path
    tick: float
    code_roots: list[str]
    app: str | None
    extra_args: list[str]
    start_timeout: float

    def node_env(self) -> dict[str, str]:
        """The environment of a node process."""
        ...

    def release_for(self, index: int) -> str | None:
        """The ``--release`` of node ``index``, if any."""
        ...

    def seeds_for(self, node: NodeProcess) -> list[str]:
        """The endpoints ``node`` joins through."""
        ...

    def command_prefix(self, index: int) -> Sequence[str]:
        """What node ``index``'s command runs under (e.g. ``ip netns exec NS``), if anything."""
        ...


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
        seeds: the seeds of its current incarnation.
    """

    def __init__(self, cluster: Cluster, index: int, short_name: str) -> None:
        self.cluster = cluster
        self.index = index
        self.name = full_node_name(short_name)
        self.short_name = short_name
        self.endpoint = ""
        self.pid = 0
        self.state_dir = cluster.directory / "nodes" / self.name
        self.stderr_path = cluster.directory / "logs" / f"{self.name}.stderr"
        self.stdout_lines: list[str] = []
        self.seeds: list[str] = []
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

    def restart(
        self,
        *,
        same_port: bool = True,
        seeds: Iterable[str] | None = None,
        timeout: float | None = None,
        wait: bool = True,
    ) -> None:
        """Start the node again under the same name (stopping it first if it runs).

        With ``same_port`` it listens on its previous port, else on a new one.
        Its seeds are ``seeds``, by default the endpoints of the other running
        nodes, so it rejoins. Without ``wait`` it returns at once (see ``wait_ready``).
        """
        if self.is_running():
            self.stop()
        listen = self.endpoint if same_port and self.endpoint else "tcp://127.0.0.1:0"
        self._spawn(listen, self.cluster.seeds_for(self) if seeds is None else list(seeds))
        if wait:
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
        self.seeds = list(seeds)
        args = [*self.cluster.command_prefix(self.index), sys.executable, "-m", "hotmesh"]
        args += ["node", "--name", self.short_name]
        args += ["--listen", listen, "--cookie-file", str(self.cluster.cookie_file)]
        args += ["--tick", str(self.cluster.tick), "--state-dir", str(self.state_dir)]
        for seed in seeds:
            args += ["--seed", seed]
        for root in self.cluster.code_roots:
            args += ["--code-root", str(root)]
        release = self.cluster.release_for(self.index)
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
                env=self.cluster.node_env(),
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


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the parent dies (Linux only)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
