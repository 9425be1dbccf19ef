"""Processes the rpc benchmark starts: the baseline servers and the caller processes (sockets).

    python bench/peers.py raw-server [CURVE_SECRET]   raw pyzmq ROUTER + msgpack echo
    python bench/peers.py rpyc-server                 rpyc ThreadedServer with len/echo
    python bench/peers.py caller KIND ARGS...         KIND: hotmesh | rpyc | raw
    python bench/peers.py rollout BATCH COOKIE STATE SEED NAME...
                                                      a rollout driver (bench/upgrade.py)
    python bench/peers.py multicaller COOKIE STATE SEED NAME...
                                                      a node timing multicalls to the NAMEs

A server prints its port. The rollout driver joins the mesh, waits until the nodes
loaded the code server's parts (on a tree where they do so once settled), prints
``ready``, and on ``go`` runs ``deploy.rolling_upgrade`` over the NAMEs in batches of
BATCH, prints ``done`` when it returns, then one JSON line: wall seconds, each node's
seconds, whether it was interrupted, and each node's version after it. A caller prints
``ready``, then for every ``go THREADS SECONDS`` line on stdin runs THREADS threads
calling ``len`` on its server as fast as they can for SECONDS (after a warm-up and a
barrier) and prints how many calls completed; ``quit`` ends it. A multicaller joins the
mesh, prints ``ready``, and for every ``go COUNT`` line times COUNT multicalls of ``len``
to the NAMEs from one thread and prints their seconds as one JSON list: the calling
side of the tree it imports (its PYTHONPATH), for a before/after of that side.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import msgpack
import zmq

PAYLOAD = "x" * 16
# A hotmesh node routes sys.stdin/stdout for its consoles: keep the process's own.
_STDIN, _STDOUT = sys.stdin, sys.stdout


def raw_server(curve_secret: str | None) -> None:
    """A ROUTER answering ``len`` and ``echo`` requests, one thread, msgpack."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.linger = 0
    if curve_secret:
        sock.curve_secretkey = curve_secret.encode()
        sock.curve_server = True
    print(sock.bind_to_random_port("tcp://127.0.0.1"), flush=True)
    while True:
        ident, data = sock.recv_multipart(copy=False)
        request = msgpack.unpackb(data.buffer)
        method = request["m"]
        if method == "stop":
            break
        arg = request["a"][0]
        value = len(arg) if method == "len" else arg
        sock.send_multipart([ident, msgpack.packb({"id": request["id"], "v": value})], copy=False)


def rpyc_server() -> None:
    """An rpyc ThreadedServer (a thread per connection) exposing ``len`` and ``echo``."""
    import rpyc
    from rpyc.utils.server import ThreadedServer

    class Bench(rpyc.Service):  # type: ignore[misc]
        def exposed_len(self, value: Any) -> int:
            return len(value)

        def exposed_echo(self, value: Any) -> Any:
            return value

    server = ThreadedServer(Bench, hostname="127.0.0.1", port=0)
    print(server.port, flush=True)
    server.start()


class RawCaller:
    """A DEALER per caller thread to the raw server: send, then wait for the reply."""

    def __init__(self, port: int, curve_public: bytes | None = None) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        if curve_public:
            self.sock.curve_serverkey = curve_public
            self.sock.curve_publickey, self.sock.curve_secretkey = zmq.curve_keypair()
        self.sock.connect(f"tcp://127.0.0.1:{port}")
        self.next_id = 0

    def call(self, method: str, arg: Any) -> Any:
        self.next_id += 1
        self.sock.send(msgpack.packb({"id": self.next_id, "m": method, "a": [arg]}))
        return msgpack.unpackb(self.sock.recv(copy=False).buffer)["v"]

    def close(self) -> None:
        self.sock.close()
        self.ctx.term()


def rpyc_function(port: int, name: str) -> tuple[Any, Callable[..., Any]]:
    """A connection to the rpyc server and its exposed ``name`` fetched once (one
    round trip per call afterwards)."""
    import rpyc

    conn = rpyc.connect("127.0.0.1", port)
    return conn, getattr(conn.root, name)


def _one_per_thread(kind: str, argv: list[str]) -> Callable[[], Callable[[], object]]:
    """A factory giving each caller thread its own way to call ``len`` on the server."""
    if kind == "raw":
        port = int(argv[0])

        def raw() -> Callable[[], object]:
            caller = RawCaller(port)
            return lambda: caller.call("len", PAYLOAD)

        return raw
    if kind == "rpyc":
        port = int(argv[0])

        def rpyc_call() -> Callable[[], object]:
            _conn, fn = rpyc_function(port, "len")
            return lambda: fn(PAYLOAD)

        return rpyc_call
    import hotmesh

    target, seed, cookie, state = argv
    node = hotmesh.start(f"bench-caller-{time_tag()}", seeds=[seed], cookie=cookie, state_dir=state)
    if not node.wait_connected([target], timeout=30):
        raise SystemExit(f"caller did not connect to {target}")
    return lambda: lambda: node.call(target, "len", PAYLOAD)


def time_tag() -> str:
    return f"{time.time_ns():x}"


def run_threads(factory: Callable[[], Callable[[], object]], threads: int, seconds: float) -> int:
    """Calls completed by ``threads`` threads in ``seconds`` after a common start."""
    counts = [0] * threads
    stop_at = [0.0]

    def open_window() -> None:
        stop_at[0] = time.perf_counter() + seconds

    # The window opens once every thread is connected, warm and waiting.
    barrier = threading.Barrier(threads + 1, action=open_window)

    def work(i: int) -> None:
        call = factory()
        for _ in range(20):
            call()
        barrier.wait()
        n = 0
        clock = time.perf_counter
        while clock() < stop_at[0]:
            call()
            n += 1
        counts[i] = n

    pool = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    for thread in pool:
        thread.join()
    return sum(counts)


def caller(kind: str, argv: list[str]) -> None:
    """Serve ``go THREADS SECONDS`` commands on stdin (see the module docstring)."""
    factory = _one_per_thread(kind, argv)
    print("ready", file=_STDOUT, flush=True)
    while line := _STDIN.readline():
        words = line.split()
        if not words or words[0] == "quit":
            break
        threads, seconds = int(words[1]), float(words[2])
        print(run_threads(factory, threads, seconds), file=_STDOUT, flush=True)


def rollout(batch: int, cookie: str, state: str, seed: str, names: list[str]) -> None:
    """Drive one rolling upgrade from this process (see the module docstring)."""
    import json
    import logging

    import hotmesh
    from hotmesh import deploy

    logging.getLogger("hotmesh").setLevel(logging.WARNING)
    node = hotmesh.start(f"bench-driver-{time_tag()}", seeds=[seed], cookie=cookie, state_dir=state)
    if not node.wait_connected(names, timeout=60):
        raise SystemExit("the rollout driver did not connect to every node")
    _wait_parts_loaded(node, names)
    print("ready", file=_STDOUT, flush=True)
    _STDIN.readline()
    began = time.perf_counter()
    result = deploy.rolling_upgrade(
        names, upgrade="hotmesh.deploy.upgrade_node", batch=batch, out=lambda _: None
    )
    seconds = time.perf_counter() - began
    # The clients' "during" window ends here: the check below is the bench's, not the rollout's.
    print("done", file=_STDOUT, flush=True)
    versions = node.multicall(names, "hotmesh.deploy.node_version", timeout=10)[0]
    line = {
        "seconds": seconds,
        "per_node": [r.seconds for r in result.results],
        "interrupted": result.interrupted,
        "versions": {name: str(v) for name, v in versions.items()},
    }
    print(json.dumps(line), file=_STDOUT, flush=True)
    node.stop()


def multicaller(cookie: str, state: str, seed: str, names: list[str]) -> None:
    """Time multicalls to ``names`` on demand (see the module docstring)."""
    import json

    import hotmesh

    node = hotmesh.start(f"bench-mcall-{time_tag()}", seeds=[seed], cookie=cookie, state_dir=state)
    if not node.wait_connected(names, timeout=60):
        raise SystemExit("the multicaller did not connect to every node")
    print("ready", file=_STDOUT, flush=True)
    clock = time.perf_counter
    while line := _STDIN.readline():
        words = line.split()
        if not words or words[0] == "quit":
            break
        samples = []
        for _ in range(int(words[1])):
            start = clock()
            node.multicall(names, "len", PAYLOAD)
            samples.append(clock() - start)
        print(json.dumps(samples), file=_STDOUT, flush=True)
    node.stop()


def _wait_parts_loaded(node: Any, names: list[str]) -> None:
    """On a tree whose nodes load the code server's parts once settled, wait for that.

    So that the load happens before the clients' baseline, not beside it or the rollout.
    """
    from hotmesh.code import server

    parts = getattr(server, "PARTS", ())
    deadline = time.monotonic() + 60
    while parts and time.monotonic() < deadline:
        loaded = node.multicall(names, "sys:modules.__contains__", parts[-1], timeout=10)[0]
        if len(loaded) == len(names) and all(loaded.values()):
            return
        time.sleep(0.2)


def main() -> None:
    role = sys.argv[1]
    if role == "raw-server":
        raw_server(sys.argv[2] if len(sys.argv) > 2 else None)
    elif role == "rpyc-server":
        rpyc_server()
    elif role == "caller":
        caller(sys.argv[2], sys.argv[3:])
    elif role == "multicaller":
        cookie, state, seed, *names = sys.argv[2:]
        multicaller(cookie, state, seed, names)
    elif role == "rollout":
        batch, cookie, state, seed, *names = sys.argv[2:]
        rollout(int(batch), cookie, state, seed, names)
    else:
        raise SystemExit(f"unknown role {role!r}")


if __name__ == "__main__":
    main()
