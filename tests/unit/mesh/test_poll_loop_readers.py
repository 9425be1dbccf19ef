"""The I/O loop calls a reader while its source is readable, zmq socket or plain fd,
and never after it was removed (plain fds wait in an epoll set of their own)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
import zmq

from hotmesh._mesh.iothread import IOThread
from tests.waiting import wait_until


@pytest.fixture
def io() -> Iterator[IOThread]:
    thread = IOThread()
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()


def test_a_plain_fd_reader_runs_while_readable_and_not_once_removed(io: IOThread) -> None:
    r, w = os.pipe()
    os.set_blocking(r, False)
    got: list[bytes] = []
    try:
        io.run_sync(lambda: io.loop.add_reader(r, lambda: got.append(os.read(r, 100))))
        os.write(w, b"one")
        wait_until(lambda: got == [b"one"], timeout=5, message="the reader ran")
        io.run_sync(lambda: io.loop.remove_reader(r))
        io.run_sync(lambda: io.loop.remove_reader(r))  # twice: no error
        os.write(w, b"two")
        io.run_sync(lambda: None)  # a turn of the loop with the pipe readable
        io.run_sync(lambda: None)
        assert got == [b"one"]
    finally:
        os.close(r)
        os.close(w)


def test_an_fd_closed_while_watched_can_be_watched_again_under_its_number(io: IOThread) -> None:
    r, w = os.pipe()
    io.run_sync(lambda: io.loop.add_reader(r, lambda: None))
    os.close(r)  # the kernel forgets it; the loop still has the number
    os.close(w)
    r2, w2 = os.pipe()
    os.set_blocking(r2, False)
    seen = threading.Event()
    try:
        io.run_sync(lambda: io.loop.add_reader(r2, seen.set))  # the same number, likely
        os.write(w2, b"x")
        wait_until(seen.is_set, timeout=5, message="the new reader ran")
        io.run_sync(lambda: io.loop.remove_reader(r2))
    finally:
        os.close(r2)
        os.close(w2)


def test_zmq_socket_readers_and_fd_readers_work_side_by_side(io: IOThread) -> None:
    ctx = zmq.Context()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    a.bind("inproc://readers")
    b.connect("inproc://readers")
    r, w = os.pipe()
    os.set_blocking(r, False)
    got: list[bytes] = []
    try:
        io.run_sync(lambda: io.loop.add_reader(a, lambda: got.append(a.recv(zmq.NOBLOCK))))
        io.run_sync(lambda: io.loop.add_reader(r, lambda: got.append(os.read(r, 100))))
        b.send(b"zmq")
        os.write(w, b"fd")
        wait_until(lambda: sorted(got) == [b"fd", b"zmq"], timeout=5, message="both readers ran")
        io.run_sync(lambda: io.loop.remove_reader(a))
        io.run_sync(lambda: io.loop.remove_reader(r))
    finally:
        os.close(r)
        os.close(w)
        a.close(linger=0)
        b.close(linger=0)
        ctx.term()
