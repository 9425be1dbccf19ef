"""Benchmarks of the console, each against a baseline measured in the same run.

Run: .venv/bin/python bench/console.py   (about 15 s)
Starts one node process (LocalCluster) and talks to it from this process.
Prints: statement round trip (``1+1`` on an attached session) vs the node's
plain ``call`` round trip over the same kind of client connection; output
streaming (lines/s of a ``print`` loop reaching the client) vs the same loop
printing into a local StringIO; completion latency vs the same jedi call made
locally on an equal namespace.
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable

from hotmesh._console.client import ConsoleClient
from hotmesh._console.completion import complete
from hotmesh._mesh import client as mesh_client
from hotmesh._rpc import client_calls
from hotmesh.testing import LocalCluster

ROUNDS = 400
LINES = 100_000


def median_ms(action: Callable[[], object], runs: int, budget: float = 10.0) -> float:
    """Median ms of ``action`` over ``runs`` runs, or as many as fit in ``budget`` seconds."""
    samples = []
    deadline = time.perf_counter() + budget
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1e3)
        if start > deadline:
            break
    return statistics.median(samples)


def round_trips(client: ConsoleClient, conn: mesh_client.Connection) -> None:
    for _ in range(20):  # warm both paths
        client.execute("1+1")
        client_calls.call(conn, "operator.add", 1, 1)
    console = median_ms(lambda: client.execute("1+1"), ROUNDS)
    call = median_ms(lambda: client_calls.call(conn, "operator.add", 1, 1), ROUNDS)
    print(f"statement round trip '1+1':   {console:7.3f} ms  (median of up to {ROUNDS})")
    print(f"node call round trip (add):   {call:7.3f} ms")
    print(f"  ratio console/call:         {console / call:7.2f}x")


def streaming(client: ConsoleClient) -> None:
    received = [0]
    messages = [0]

    def on_output(name: str, text: str) -> None:
        received[0] += text.count("\n")
        messages[0] += 1

    code = f"for i in range({LINES}): print('line', i)"
    start = time.perf_counter()
    outcome = client.execute(code, on_output=on_output)
    remote = time.perf_counter() - start
    assert outcome.ok and received[0] == LINES, (outcome, received)
    sink = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(sink):
        for i in range(LINES):
            print("line", i)
    local = time.perf_counter() - start
    print(
        f"print loop reaching client:   {LINES / remote:10,.0f} lines/s  ({messages[0]} messages)"
    )
    print(f"same loop into a StringIO:    {LINES / local:10,.0f} lines/s")
    print(f"  ratio remote/local speed:   {local / remote:7.2f}x")


def completion(client: ConsoleClient) -> None:
    client.execute("import os, collections\nrecords = collections.OrderedDict()")
    client.complete("os.pa", 5)  # cold: jedi import on the node
    remote = median_ms(lambda: client.complete("records.move_to", 15), 30)
    namespace = {"os": os, "collections": __import__("collections")}
    namespace["records"] = namespace["collections"].OrderedDict()
    complete(namespace, "records.move_to", 15)
    local = median_ms(lambda: complete(namespace, "records.move_to", 15), 30)
    print(f"completion 'records.move_to': {remote:7.3f} ms  (median of 30, warm)")
    print(f"same jedi call in-process:    {local:7.3f} ms")
    print(f"  ratio remote/local:         {remote / local:7.2f}x")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("HOTMESH_STATE_DIR", os.path.join(tmp, "state"))
        with LocalCluster(1, prefix="bench", tick=2.0, directory=tmp) as cluster:
            client = ConsoleClient.connect(cluster.endpoints[0], cluster.cookie)
            conn = mesh_client.Connection(cluster.endpoints[0], cluster.cookie)
            try:
                client.open()
                round_trips(client, conn)
                completion(client)
                streaming(client)
            finally:
                client.close()
                conn.close()


if __name__ == "__main__":
    main()
