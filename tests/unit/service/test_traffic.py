"""The traffic generator catches what it must: doubled, reordered or lost replies, resets, drops."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator

import pytest

from hotmesh.demo.traffic import Traffic, TrafficReport

# A misbehaving server gets (request number on its connection, rid, count) and
# returns the lines to send back (or None to close the connection).
Behaviour = Callable[[int, int, int], list[str] | None]


class LineServer:
    """A loopback line server answering the demo protocol, with a chosen misbehaviour."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def __enter__(self) -> LineServer:
        self._thread.start()
        assert self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        count = 0
        n = 0
        try:
            while raw := await reader.readline():
                n += 1
                count += 1
                rid = int(raw.split()[0])
                lines = self.behaviour(n, rid, count)
                if lines is None:
                    break
                writer.write("".join(line + "\n" for line in lines).encode())
                await writer.drain()
        finally:
            writer.close()


def run(behaviour: Behaviour, requests: int = 10) -> TrafficReport:
    with LineServer(behaviour) as server:
        traffic = Traffic(
            [("127.0.0.1", server.port)],
            per_endpoint=1,
            interval=0,
            max_requests=requests,
            reply_timeout=2.0,
        ).start()
        assert traffic.wait_done(10)
        return traffic.stop()


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    before = threading.active_count()
    yield
    assert threading.active_count() <= before + 1


def test_a_well_behaved_server_gives_a_clean_report() -> None:
    report = run(lambda n, rid, count: [f"{rid} v1 ok {count}"])
    assert report.ok, report.problems
    assert (report.requests, report.replies, report.formats["v1"]) == (10, 10, 10)
    assert report.percentile_ms(0.99) >= report.percentile_ms(0.5) > 0


def test_a_doubled_reply_is_caught() -> None:
    def doubled(n: int, rid: int, count: int) -> list[str]:
        line = f"{rid} v1 ok {count}"
        return [line, line] if n == 3 else [line]

    report = run(doubled)
    assert not report.ok
    assert any("lost, doubled, reordered" in p or "unexpected data" in p for p in report.problems)


def test_a_reset_counter_is_reported_as_lost_state() -> None:
    report = run(lambda n, rid, count: [f"{rid} v2 ok count={count if n < 5 else 1} conn=1"])
    assert any("state lost" in p for p in report.problems)


def test_a_closed_connection_is_counted_as_dropped() -> None:
    report = run(lambda n, rid, count: None if n == 4 else [f"{rid} v1 ok {count}"])
    assert report.dropped == 1
    assert not report.ok


def test_error_replies_are_counted_and_resync_the_count() -> None:
    def flaky(n: int, rid: int, count: int) -> list[str]:
        return [f"{rid} ERR ServiceCrashed: boom"] if n == 2 else [f"{rid} v1 ok {count}"]

    report = run(flaky)
    assert report.errors == 1
    assert report.problems == []


def test_traffic_refuses_non_loopback_addresses() -> None:
    with pytest.raises(ValueError, match="loopback"):
        Traffic([("10.0.0.1", 7000)])
