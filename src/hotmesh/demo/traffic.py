"""Traffic generator for the demo: long-lived client connections that check every reply.

Does network I/O (loopback only). Each connection increments its own key, one
request at a time, and checks that every request gets exactly one reply, in order,
with the count it expects (so lost state shows up), noting the reply format (v1/v2).

    python -m hotmesh.demo.traffic --port 7001 --port 7002 --connections 4 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from hotmesh.demo.protocol import incr, parse_reply

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class TrafficReport:
    """What the traffic saw: counts, reply formats, problems and latency.

    ``ok`` means every request got exactly one in-order reply with the expected
    count and no connection was dropped.
    """

    connections: int = 0
    requests: int = 0
    replies: int = 0
    dropped: int = 0
    errors: int = 0
    formats: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return not self.problems and self.dropped == 0 and self.replies == self.requests

    def percentile_ms(self, q: float) -> float:
        """Latency percentile ``q`` (0..1) in milliseconds (0.0 without replies)."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))] * 1000

    def summary(self) -> str:
        """One line for humans and logs."""
        formats = " ".join(f"{k}={v}" for k, v in sorted(self.formats.items())) or "none"
        return (
            f"{self.connections} connections, {self.requests} requests, {self.replies} replies, "
            f"{self.dropped} dropped, {self.errors} errors, formats {formats}, "
            f"p50 {self.percentile_ms(0.5):.2f} ms, p99 {self.percentile_ms(0.99):.2f} ms, "
            f"{len(self.problems)} problems"
        )


class Traffic:
    """Hold ``per_endpoint`` connections to each ``(host, port)`` and send continuously.

    ``start()`` returns once every connection is open; ``snapshot()`` reads the live
    counts; ``stop()`` stops sending, collects the last replies, half-closes each
    connection, checks nothing more arrives, and returns the report. Sending is
    bounded by ``max_requests`` per connection and ``duration`` seconds, if given.
    """

    def __init__(
        self,
        endpoints: Sequence[tuple[str, int]],
        *,
        per_endpoint: int = 4,
        interval: float = 0.002,
        max_requests: int | None = None,
        duration: float | None = None,
        reply_timeout: float = 10.0,
    ) -> None:
        for host, _port in endpoints:
            if host not in LOOPBACK:
                raise ValueError(f"the demo traffic only goes to loopback, not {host!r}")
        self.endpoints = list(endpoints)
        self.per_endpoint = per_endpoint
        self.interval = interval
        self.max_requests = max_requests
        self.duration = duration
        self.reply_timeout = reply_timeout
        self.run_id = os.urandom(4).hex()
        self._report = TrafficReport()
        self._opened = threading.Event()
        self._done = threading.Event()
        self._open_error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="hotmesh-demo-traffic", daemon=True)

    def start(self, *, timeout: float = 10.0) -> Traffic:
        """Open every connection and start sending.

        Raises:
            OSError: a connection could not be opened.
            TimeoutError: the connections did not open within ``timeout``.
        """
        self._thread.start()
        if not self._opened.wait(timeout):
            raise TimeoutError(f"traffic connections did not open within {timeout}s")
        if self._open_error is not None:
            raise self._open_error
        return self

    def snapshot(self) -> TrafficReport:
        """A copy of the counts so far (safe to read while traffic runs)."""
        report = self._report
        return TrafficReport(
            report.connections,
            report.requests,
            report.replies,
            report.dropped,
            report.errors,
            Counter(report.formats),
            list(report.problems),
            list(report.latencies),
        )

    def wait_done(self, timeout: float) -> bool:
        """Wait until every connection finished (bounds reached, dropped, or stopped)."""
        return self._done.wait(timeout)

    def stop(self, *, timeout: float = 30.0) -> TrafficReport:
        """Stop sending, wait for outstanding replies and return the final report."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop already finished
                loop.call_soon_threadsafe(stopping.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._report.problems.append(f"traffic did not finish within {timeout}s")
        return self._report

    # -- event loop thread -----------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        finally:
            self._opened.set()
            self._done.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        try:
            for host, port in self.endpoints:
                for _ in range(self.per_endpoint):
                    streams.append(await asyncio.open_connection(host, port))
        except OSError as exc:
            self._open_error = exc
            for _reader, writer in streams:
                writer.close()
            return
        self._report.connections = len(streams)
        self._opened.set()
        deadline = None if self.duration is None else time.monotonic() + self.duration
        await asyncio.gather(*(self._client(i, r, w, deadline) for i, (r, w) in enumerate(streams)))

    async def _client(
        self,
        index: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        deadline: float | None,
    ) -> None:
        report = self._report
        key = f"{self.run_id}-{index}"
        expected: int | None = 1
        rid = 0
        try:
            while self._may_send(rid, deadline):
                rid += 1
                sent = time.perf_counter()
                writer.write((incr(rid, key) + "\n").encode())
                report.requests += 1
                await writer.drain()
                raw = await asyncio.wait_for(reader.readline(), self.reply_timeout)
                if not raw:
                    report.dropped += 1
                    report.problems.append(f"connection {index}: closed by the server at {rid}")
                    return
                report.latencies.append(time.perf_counter() - sent)
                report.replies += 1
                expected = self._check(index, rid, raw.decode(errors="replace").strip(), expected)
                if self.interval:
                    await asyncio.sleep(self.interval)
            await self._finish(index, reader, writer)
        except TimeoutError:
            report.problems.append(
                f"connection {index}: no reply to {rid} in {self.reply_timeout}s"
            )
        except ConnectionError as exc:
            report.dropped += 1
            report.problems.append(f"connection {index}: dropped at {rid}: {exc!r}")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _may_send(self, sent: int, deadline: float | None) -> bool:
        assert self._stopping is not None
        if self._stopping.is_set():
            return False
        if self.max_requests is not None and sent >= self.max_requests:
            return False
        return deadline is None or time.monotonic() < deadline

    def _check(self, index: int, rid: int, line: str, expected: int | None) -> int | None:
        """Check one reply; return the count expected next (None: unknown after an error)."""
        report = self._report
        try:
            reply = parse_reply(line)
        except ValueError as exc:
            report.problems.append(f"connection {index}: {exc}")
            return None
        report.formats[reply.fmt] += 1
        if reply.rid != rid:
            report.problems.append(
                f"connection {index}: got {reply.rid} for {rid} (lost, doubled, reordered)"
            )
        if reply.fmt == "ERR":
            report.errors += 1
            return None
        if reply.count is None:
            report.problems.append(f"connection {index}: no count in {line!r}")
            return None
        if expected is not None and reply.count != expected:
            report.problems.append(
                f"connection {index}: count {reply.count}, expected {expected} (state lost?)"
            )
        return reply.count + 1

    async def _finish(
        self, index: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Half-close and check the server sends nothing more (no duplicate replies)."""
        if writer.can_write_eof():
            writer.write_eof()
        extra = await asyncio.wait_for(reader.read(), self.reply_timeout)
        if extra:
            self._report.problems.append(
                f"connection {index}: unexpected data after the last reply: {extra[:80]!r}"
            )


def run(
    endpoints: Sequence[tuple[str, int]],
    *,
    per_endpoint: int = 4,
    duration: float = 5.0,
    interval: float = 0.002,
) -> TrafficReport:
    """Send traffic for ``duration`` seconds and return the report (blocking)."""
    traffic = Traffic(endpoints, per_endpoint=per_endpoint, duration=duration, interval=interval)
    traffic.start()
    traffic.wait_done(duration + 30.0)
    return traffic.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run traffic against demo front ends; exit 0 if the report is ok."""
    parser = argparse.ArgumentParser(prog="python -m hotmesh.demo.traffic")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, action="append", required=True)
    parser.add_argument("--connections", type=int, default=4, help="per port")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=0.002)
    args = parser.parse_args(argv)
    report = run(
        [(args.host, p) for p in args.port],
        per_endpoint=args.connections,
        duration=args.duration,
        interval=args.interval,
    )
    print(report.summary())
    for problem in report.problems[:20]:
        print("  " + problem)
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
