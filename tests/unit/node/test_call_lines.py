"""Call lines: one per thread and peer, capped, swept when their thread ends (inproc zmq)."""

from __future__ import annotations

import threading

import zmq

from hotmesh._mesh.lines import CallLines, call_each_peer_once
from hotmesh._rpc.fanout import fan_out_pool

KEYS = zmq.curve_keypair()


def make_lines(cap: int) -> tuple[zmq.Context, CallLines]:
    ctx = zmq.Context()
    return ctx, CallLines(ctx, "a@h", "inc", KEYS, cap=cap)


def test_a_thread_reuses_its_line_and_other_threads_get_their_own() -> None:
    ctx, lines = make_lines(cap=8)
    first = lines.line_for("b@h", "inproc://b", "i1")
    assert lines.line_for("b@h", "inproc://b", "i1") is first
    other: list[object] = []
    thread = threading.Thread(
        target=lambda: other.append(lines.line_for("b@h", "inproc://b", "i1"))
    )
    thread.start()
    thread.join()
    assert other[0] is not first
    lines.close_all()
    ctx.term()


def test_a_fan_out_worker_gets_no_line_and_calls_on_the_shared_path() -> None:
    ctx, lines = make_lines(cap=8)

    def marked() -> object:
        call_each_peer_once()
        return lines.line_for("b@h", "inproc://b", "i1")

    got: list[object] = []
    thread = threading.Thread(target=lambda: got.append(marked()))
    thread.start()
    thread.join()
    with fan_out_pool(2, "test-fanout") as pool:
        from_pool = pool.submit(lines.line_for, "b@h", "inproc://b", "i1").result()
    assert got == [None] and from_pool is None
    assert lines.line_for("b@h", "inproc://b", "i1") is not None  # this thread is not marked
    lines.close_all()
    ctx.term()


def test_a_new_incarnation_gets_a_new_line() -> None:
    ctx, lines = make_lines(cap=8)
    old = lines.line_for("b@h", "inproc://b", "i1")
    assert lines.line_for("b@h", "inproc://b", "i2") is not old
    assert old is not None and old.socket.closed
    lines.close_all()
    ctx.term()


def test_cap_is_enforced_and_lines_of_ended_threads_are_swept() -> None:
    ctx, lines = make_lines(cap=1)

    def open_one() -> None:
        assert lines.line_for("b@h", "inproc://b", "i1") is not None

    thread = threading.Thread(target=open_one)
    thread.start()
    thread.join()
    # The cap is reached, but the owner of the only line has ended.
    assert lines.line_for("c@h", "inproc://c", "i1") is not None
    assert lines.line_for("d@h", "inproc://d", "i1") is None  # cap reached by a live thread
    lines.close_all()
    assert lines.closed
    assert lines.line_for("e@h", "inproc://e", "i1") is None
    ctx.term()


def test_lines_for_gives_each_peer_the_line_line_for_gives() -> None:
    ctx, lines = make_lines(cap=8)
    first = lines.line_for("b@h", "inproc://b", "i1")
    peers = [("b@h", "inproc://b", "i1"), ("c@h", "inproc://c", "i1"), ("d@h", None, None)]
    found = lines.lines_for(peers)
    assert found[0] is first and found[2] is None
    assert found[1] is not None and found[1] is lines.line_for("c@h", "inproc://c", "i1")
    renewed = lines.lines_for([("b@h", "inproc://b", "i2")])[0]
    assert renewed is not first and first is not None and first.socket.closed
    lines.close_all()
    ctx.term()
