"""The demo's TCP front end: stable code that owns client connections (does network I/O).

An asyncio line server on its own thread. Each connection gets an id; each line is
handed to the ``demo`` service (``service_call_async``) and the reply is written back
in order. Connections live here, in code that is never reloaded, so an upgrade of the
service's callback module never closes one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading

from hotmesh._errors import HotmeshError, NoSuchService
from hotmesh.service import service_call_async, service_cast

log = logging.getLogger("hotmesh.demo")

MAX_LINE = 64 * 1024


class FrontEnd:
    """A TCP line server on ``host:port`` that forwards every line to a service.

    ``start()`` returns once the socket is bound; ``stop()`` closes the listener and
    every open connection. Counters (``opened``, ``open_connections``, ``lines``) are
    for tests and the demo's status lines.
    """

    def __init__(
        self, service: str, *, host: str = "127.0.0.1", port: int = 0, call_timeout: float = 5.0
    ) -> None:
        self.service = service
        self.host = host
        self.call_timeout = call_timeout
        self.port = port
        self.opened = 0
        self.lines = 0
        self._ids = itertools.count(1)
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="hotmesh-demo-tcp", daemon=True)

    @property
    def open_connections(self) -> int:
        """Client connections open now."""
        return len(self._writers)

    def start(self, *, timeout: float = 5.0) -> int:
        """Bind and start serving; return the port.

        Raises:
            OSError: the address could not be bound.
            TimeoutError: the server thread did not come up within ``timeout``.
        """
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"demo front end did not start within {timeout}s")
        if self._error is not None:
            raise self._error
        return self.port

    def stop(self, *, timeout: float = 5.0) -> None:
        """Close the listener and all connections; wait for the thread to end."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop already finished
                loop.call_soon_threadsafe(stopping.set)
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start(); the thread ends either way
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._serve, self.host, self.port, limit=MAX_LINE)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stopping.wait()
            server.close()
            for writer in list(self._writers):
                writer.close()
        log.info("demo front end on %s:%d stopped", self.host, self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = next(self._ids)
        self.opened += 1
        self._writers.add(writer)
        with contextlib.suppress(NoSuchService):
            service_cast(self.service, ("open", conn))
        try:
            while True:
                raw = await reader.readline()
                if not raw:
                    break
                line = raw.decode("utf-8", errors="replace").strip()
                if line:
                    self.lines += 1
                    writer.write((await self._answer(conn, line) + "\n").encode())
                    await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError) as exc:
            log.info("demo connection %d ended: %s", conn, exc)
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(NoSuchService):
                service_cast(self.service, ("close", conn))
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, conn: int, line: str) -> str:
        try:
            reply = await service_call_async(self.service, (conn, line), timeout=self.call_timeout)
        except HotmeshError as exc:
            # The connection outlives a crash of the request: let it crash, keep serving.
            rid = line.split(" ", 1)[0]
            summary = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return f"{rid} ERR {type(exc).__name__}: {summary}"
        return str(reply)
