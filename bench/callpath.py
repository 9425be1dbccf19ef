"""What each step of a remote call costs, measured one by one (in-process; loopback sockets).

Run: .venv/bin/python bench/callpath.py   (about 20 s)

The steps of ``node.call`` as docs/reference/rpc.md describes them: the Python work on
each side (no sockets: the real functions on real messages), one zmq operation at a
time on a CURVE DEALER -> ROUTER pair over loopback, and a thread hand-off (a thread
blocked on a lock, woken by another: what handing a call from an I/O thread to a
worker costs, which the leader/followers inbox avoids). Each figure is the best of 5
repeats (what the step costs when the machine lets it run; the load average is
printed), then the median of 5 for the hops, whose cost is mostly waiting for a
thread to be scheduled. Informational: no target, exit status 0.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
import timeit
from collections.abc import Callable

import zmq
from harness import load_average

from hotmesh._rpc import messages
from hotmesh._rpc.caller import Waiter
from hotmesh._rpc.dispatch import Dispatcher
from hotmesh._rpc.pending import PendingCalls
from hotmesh._rpc.workers import WorkerPool
from hotmesh._wire.frames import decode_frame, encode_frame

PAYLOAD = "x" * 16
N = 20_000


def best(fn: Callable[[], object], number: int = N) -> float:
    """Seconds per call of ``fn``: the best of 5 repeats."""
    for _ in range(200):
        fn()
    return min(timeit.repeat(fn, number=number, repeat=5)) / number


def row(label: str, seconds: float) -> None:
    print(f"  {label:<62} {seconds * 1e6:7.2f} us", flush=True)


def python_steps() -> None:
    print("Python work per call (no sockets), best of 5:")
    call = messages.call_message(7, "len", (PAYLOAD,), {}, 5.0)
    data = encode_frame(call)
    reply = messages.ok_reply(7, 16)
    reply_data = encode_frame(reply)
    row(
        "caller: build + encode the call",
        best(lambda: encode_frame(messages.call_message(7, "len", (PAYLOAD,), {}, 5.0))),
    )
    pending: PendingCalls[Waiter] = PendingCalls()
    lock = threading.Lock()

    def bookkeeping() -> None:
        waiter = Waiter()
        with lock:
            call_id = pending.add("b@h", 1.0, waiter)
        with lock:
            pending.settle(call_id)

    row("caller: waiter + pending call (add, settle)", best(bookkeeping))
    row("target: decode the call", best(lambda: decode_frame(data)))
    dispatcher = Dispatcher(None, WorkerPool(1), lambda sender, message: None)
    row("target: resolve + run len() + build the reply", best(lambda: dispatcher.execute(call)))
    row("target: encode the reply", best(lambda: encode_frame(reply)))
    row("caller: decode the reply", best(lambda: decode_frame(reply_data)))


def zmq_steps() -> None:
    print("zmq, one operation on a CURVE DEALER -> ROUTER pair over loopback, best of 5:")
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    public, secret = zmq.curve_keypair()
    router = ctx.socket(zmq.ROUTER)
    router.curve_server = True
    router.curve_secretkey = secret
    port = router.bind_to_random_port("tcp://127.0.0.1")
    dealer = ctx.socket(zmq.DEALER)
    dealer.curve_serverkey = public
    dealer.curve_publickey, dealer.curve_secretkey = public, secret
    dealer.sndhwm = router.rcvhwm = 0
    dealer.connect(f"tcp://127.0.0.1:{port}")
    frame = encode_frame(messages.call_message(7, "len", (PAYLOAD,), {}, 5.0))
    dealer.send(frame)
    router.recv_multipart()
    events, noblock = int(zmq.EVENTS), int(zmq.NOBLOCK)
    row("getsockopt(ZMQ_EVENTS)", best(lambda: router.getsockopt(events)))
    count = 5000
    sends = []
    receives = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(count):
            dealer.send(frame, noblock)
        sends.append((time.perf_counter() - started) / count)
        time.sleep(0.5)  # all of them arrive (a late one is waited for)
        started = time.perf_counter()
        for _ in range(count):
            router.recv()
            router.recv()
        receives.append((time.perf_counter() - started) / count)
    row("send a frame (queued for zmq's I/O thread)", min(sends))
    row("receive a waiting message (identity + frame)", min(receives))
    hops = []
    reply = encode_frame(messages.ok_reply(7, 16))

    def echo() -> None:
        while True:
            ident, data = router.recv_multipart()
            if data == b"stop":
                return
            router.send_multipart([ident, reply])

    thread = threading.Thread(target=echo)
    thread.start()
    for _ in range(5):
        samples = []
        for _ in range(1000):
            started = time.perf_counter()
            dealer.send(frame)
            dealer.recv()
            samples.append(time.perf_counter() - started)
        hops.append(statistics.median(samples))
    dealer.send(b"stop")
    thread.join()
    print("hops (median of 5 medians):")
    row("echo round trip through a thread blocked on the ROUTER", statistics.median(hops))
    dealer.close(0)
    router.close(0)
    ctx.term()


def hand_off() -> None:
    ping, pong = threading.Lock(), threading.Lock()
    ping.acquire()
    pong.acquire()
    rounds = 1000

    def other() -> None:
        for _ in range(rounds):
            ping.acquire()
            pong.release()

    medians = []
    for _ in range(5):
        thread = threading.Thread(target=other)
        thread.start()
        samples = []
        for _ in range(rounds):
            time.sleep(0.0002)  # the other thread sleeps, as a worker between calls
            started = time.perf_counter()
            ping.release()
            pong.acquire()
            samples.append(time.perf_counter() - started)
        thread.join()
        medians.append(statistics.median(samples))
    row("wake a thread blocked on a lock, and be woken back by it", statistics.median(medians))


def main() -> int:
    print("bench/callpath.py: what each step of node.call costs")
    print(load_average(), "at start\n")
    python_steps()
    print()
    zmq_steps()
    hand_off()
    print()
    print(load_average(), "at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
