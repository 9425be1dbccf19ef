"""Seed sources: where a node looks for members to join (DNS, files, the local registry).

A seed is an endpoint (``tcp://host:port``) or a provider that returns
endpoints when asked: ``dns:NAME:PORT`` (A and AAAA records), ``srv:NAME``
or ``srv:NAME@HOST:PORT`` (SRV records, each a target and a port; from the
resolv.conf nameservers or the one given), ``file:PATH`` (one endpoint per
line, read again when the file changes), ``local:`` (the nodes of this host,
from the per-host registry) or any callable returning endpoints.
``SeedSource.resolve()`` asks every provider; it does I/O (DNS, files) and may
block, so the membership driver runs it off the I/O thread.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from hotmesh._errors import ConfigError
from hotmesh._record import field, record

log = logging.getLogger("hotmesh.mesh")

Seed = str | Callable[[], Iterable[str]]
"""What ``seeds=`` accepts: an endpoint, a provider spec, or a callable."""

PREFIXES = ("tcp://", "dns:", "srv:", "file:", "local:")


def endpoint(host: str, port: int) -> str:
    """``tcp://host:port``, with an IPv6 address in brackets."""
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"tcp://[{host}]:{port}"
    except ValueError:
        pass
    return f"tcp://{host}:{port}"


@record
class DnsSeeds:
    """Every A and AAAA record of ``name``, each as ``tcp://address:port``.

    A Kubernetes headless service lists its ready pods this way.
    """

    name: str
    port: int

    def __call__(self) -> list[str]:
        try:
            infos = socket.getaddrinfo(self.name, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise LookupError(f"cannot resolve {self.name}: {exc}") from exc
        found = [endpoint(str(info[4][0]), self.port) for info in infos]
        return list(dict.fromkeys(found))


@record
class SrvSeeds:
    """Every SRV record of ``name`` (``_service._proto.domain``), as ``tcp://target:port``."""

    name: str
    nameserver: tuple[str, int] | None = None

    def __call__(self) -> list[str]:
        from hotmesh._membership import srv  # its DNS client loads with the first srv: seed

        servers = [self.nameserver] if self.nameserver else None
        records = srv.lookup(self.name, nameservers=servers)
        return [endpoint(target, port) for _, _, port, target in sorted(records)]


@record
class FileSeeds:
    """The endpoints listed in a file, one per line (``#`` starts a comment).

    The file is read again only when its modification time or size changes;
    a missing file means no seeds (yet).
    """

    path: Path
    _stamp: tuple[int, int] | None = field(default=None, init=False, repr=False)
    _cached: list[str] = field(default_factory=list, init=False, repr=False)

    def __call__(self) -> list[str]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._cached = None, []
            return []
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            lines = self.path.read_text().splitlines()
            found = [line.split("#", 1)[0].strip() for line in lines]
            self._cached = [e for e in found if e]
            self._stamp = stamp
        return list(self._cached)


@record
class LocalSeeds:
    """The endpoints of the live nodes of this host (the per-host registry)."""

    def __call__(self) -> list[str]:
        from hotmesh._mesh import registry

        return [entry.endpoint for entry in registry.entries()]


def provider(spec: str) -> Callable[[], Iterable[str]] | None:
    """The provider a seed spec names, or None for a plain endpoint.

    Raises:
        ConfigError: the spec is neither an endpoint nor a provider.
    """
    kind, _, rest = spec.partition(":")
    if spec.startswith(("tcp://", "ipc://", "inproc://")):
        return None
    if kind == "dns":
        name, _, port = rest.rpartition(":")
        if not name or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"bad seed {spec!r}: use dns:NAME:PORT")
        return DnsSeeds(name, int(port))
    if kind == "srv":
        name, at, server = rest.partition("@")
        host, _, port = server.rpartition(":") if ":" in server else (server, "", "53")
        if not name or (at and not (host and port.isdigit())):
            raise ConfigError(f"bad seed {spec!r}: use srv:_service._proto.domain[@HOST:PORT]")
        return SrvSeeds(name, (host.strip("[]"), int(port)) if at else None)
    if kind == "file":
        if not rest:
            raise ConfigError(f"bad seed {spec!r}: use file:PATH")
        return FileSeeds(Path(os.path.expanduser(rest)))
    if kind == "local" and not rest:
        return LocalSeeds()
    raise ConfigError(
        f"bad seed {spec!r}: give an endpoint (tcp://host:port) or a provider "
        "(dns:NAME:PORT, srv:NAME[@HOST:PORT], file:PATH, local:)"
    )


class SeedSource:
    """All the seeds of a node; ``resolve()`` returns their endpoints now.

    A provider that fails is logged (once per distinct error) and counts as
    no endpoints; the others still count.

    Raises:
        ConfigError: a seed that is neither an endpoint, a provider spec nor
            a callable (at construction, before any socket opens).
    """

    def __init__(self, seeds: Iterable[Seed]) -> None:
        self._fixed: list[str] = []
        self._providers: list[tuple[str, Callable[[], Iterable[str]]]] = []
        self._errors: dict[str, str] = {}
        for seed in seeds:
            if callable(seed):
                self._providers.append((getattr(seed, "__name__", repr(seed)), seed))
            elif isinstance(seed, str):
                found = provider(seed)
                if found is None:
                    self._fixed.append(seed)
                else:
                    self._providers.append((seed, found))
            else:
                raise ConfigError(f"bad seed {seed!r}: give a string or a callable")

    @property
    def dynamic(self) -> bool:
        """Whether some seed is a provider (asked again over time)."""
        return bool(self._providers)

    @property
    def fixed(self) -> Sequence[str]:
        """The plain endpoints among the seeds."""
        return tuple(self._fixed)

    def resolve(self) -> list[str]:
        """The endpoints of every seed now (blocking I/O for providers)."""
        found = list(self._fixed)
        for name, call in self._providers:
            try:
                endpoints = [str(e) for e in call()]
            except Exception as exc:
                text = f"{type(exc).__name__}: {exc}"
                if self._errors.get(name) != text:
                    self._errors[name] = text
                    log.warning("seed provider %s failed: %s", name, text)
                continue
            if name in self._errors:
                del self._errors[name]
                log.info("seed provider %s answers again", name)
            found.extend(endpoints)
        return list(dict.fromkeys(found))
