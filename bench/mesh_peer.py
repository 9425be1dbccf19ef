"""Processes for bench/mesh.py: a raw pyzmq mesh member, and hooks run inside hotmesh nodes.

Raw member: ``python bench/mesh_peer.py INDEX EP0 EP1 ...`` binds a CURVE ROUTER at
``EP[INDEX]``, connects one CURVE DEALER to every other endpoint, says hello on each,
prints ``MESHED <time>`` once it heard a hello from every other member, then idles
until killed (what hotmesh does, with nothing else: no membership, no heartbeats).

Hooks (``hotmesh node --app mesh_peer:...``, size in ``$HM_BENCH_SIZE``):
``meshed`` prints ``MESHED <time>`` once the node sees every other node, then,
in a node run by ``pool_probe``, ``POOL <threads started> <seconds eager>``;
``watch`` does that too and prints ``DOWN <name> <time>`` at each nodedown;
``started`` prints ``STARTED <CPU ms> <RSS kB>`` as the app of a node alone and exits.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

SECRET = b"hotmesh-bench-raw-mesh-secret-32"


def _print(*words: object) -> None:
    print(*words, flush=True)


def meshed(node: Any) -> None:
    """Print MESHED with the wall clock once every other node is connected."""
    size = int(os.environ["HM_BENCH_SIZE"])

    def wait() -> None:
        if node.wait_connected(count=size - 1, timeout=600):
            _print("MESHED", repr(time.time()))
            probe = sys.modules.get("__main__")
            if probe is not None and hasattr(probe, "figures"):  # run by pool_probe
                threads, eager = probe.figures()
                _print("POOL", threads, repr(eager))

    threading.Thread(target=wait, daemon=True).start()


def watch(node: Any) -> None:
    """``meshed``, plus a DOWN line at every nodedown."""

    def event(kind: str, name: str) -> None:
        if kind == "nodedown":
            _print("DOWN", name, repr(time.time()))

    node.monitor_nodes(event)
    meshed(node)


def started(node: Any) -> None:
    """Print the CPU this process used to start (ms, every thread) and its RSS (kB), then exit."""
    with open("/proc/self/status") as status:
        rss = next(line.split()[1] for line in status if line.startswith("VmRSS"))
    _print("STARTED", repr(1000 * time.process_time()), rss)
    os._exit(0)


def _server_secret() -> bytes:
    import zmq.utils.z85

    return zmq.utils.z85.encode(SECRET)


if __name__ == "__main__":
    import zmq

    # One shared server key pair (like hotmesh's cookie), distinct client keys.
    secret_key = _server_secret()
    index, endpoints = int(sys.argv[1]), sys.argv[2:]
    public_key = zmq.curve_public(secret_key)
    ctx = zmq.Context()
    ctx.max_sockets = 8192
    router = ctx.socket(zmq.ROUTER)
    router.curve_server = True
    router.curve_secretkey = secret_key
    router.bind(endpoints[index])
    dealers = []
    me = f"raw{index}".encode()
    for i, endpoint in enumerate(endpoints):
        if i == index:
            continue
        dealer = ctx.socket(zmq.DEALER)
        dealer.linger = 0
        dealer.curve_serverkey = public_key
        dealer.curve_publickey = public_key
        dealer.curve_secretkey = secret_key
        dealer.connect(endpoint)
        dealer.send(me)
        dealers.append(dealer)
    heard: set[bytes] = set()
    while len(heard) < len(endpoints) - 1:
        frames = router.recv_multipart()
        heard.add(frames[-1])
    _print("MESHED", repr(time.time()))
    while True:  # idle until killed
        router.recv_multipart()
