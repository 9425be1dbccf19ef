"""Seed sources: endpoints, DNS (A/AAAA, SRV), files, the local registry, callables."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotmesh._errors import ConfigError
from hotmesh._membership import srv
from hotmesh._membership.seeds import (
    DnsSeeds,
    FileSeeds,
    LocalSeeds,
    SeedSource,
    SrvSeeds,
    endpoint,
    provider,
)
from hotmesh._mesh import registry


def test_plain_endpoints_are_kept_in_order_without_duplicates() -> None:
    source = SeedSource(["tcp://a:1", "tcp://b:2", "tcp://a:1"])
    assert not source.dynamic
    assert source.resolve() == ["tcp://a:1", "tcp://b:2"]


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("dns:mesh.default.svc:7001", DnsSeeds),
        ("srv:_hotmesh._tcp.mesh", SrvSeeds),
        ("srv:_hotmesh._tcp.mesh@127.0.0.1:8600", SrvSeeds),
        ("file:/etc/hotmesh/seeds", FileSeeds),
        ("local:", LocalSeeds),
    ],
)
def test_provider_specs_name_their_provider(spec: str, kind: type) -> None:
    assert isinstance(provider(spec), kind)


@pytest.mark.parametrize(
    "spec", ["dns:name", "dns:name:port", "dns::7001", "dns:n:70000", "srv:", "file:", "x:y", "h:1"]
)
def test_bad_specs_are_refused_with_the_forms_that_work(spec: str) -> None:
    with pytest.raises(ConfigError, match="bad seed"):
        SeedSource([spec])


def test_a_seed_of_another_type_is_refused() -> None:
    with pytest.raises(ConfigError, match="bad seed"):
        SeedSource([7001])  # type: ignore[list-item]


def test_dns_seeds_resolve_a_name_to_every_address() -> None:
    assert DnsSeeds("localhost", 7001)()[:1] in (["tcp://127.0.0.1:7001"], ["tcp://[::1]:7001"])
    assert endpoint("::1", 7) == "tcp://[::1]:7"
    assert endpoint("10.0.0.1", 7) == "tcp://10.0.0.1:7"


def test_file_seeds_are_read_again_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "seeds"
    seeds = FileSeeds(path)
    assert seeds() == []  # no file yet: no seeds
    path.write_text("# the mesh\ntcp://a:1\n\ntcp://b:2  # second\n")
    assert seeds() == ["tcp://a:1", "tcp://b:2"]
    path.write_text("tcp://c:3\n")
    assert seeds() == ["tcp://c:3"]


def test_local_seeds_are_the_nodes_of_this_host() -> None:
    registry.register("s1", "tcp://127.0.0.1:7001")
    registry.register("s2", "tcp://127.0.0.1:7002")
    assert sorted(SeedSource(["local:"]).resolve()) == [
        "tcp://127.0.0.1:7001",
        "tcp://127.0.0.1:7002",
    ]


def test_a_failing_provider_counts_as_no_seeds_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = iter([RuntimeError("down"), RuntimeError("down"), ["tcp://c:3"]])

    def flaky() -> list[str]:
        outcome = next(calls)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    source = SeedSource(["tcp://a:1", flaky])
    assert source.dynamic
    assert source.resolve() == ["tcp://a:1"]
    assert source.resolve() == ["tcp://a:1"]
    assert source.resolve() == ["tcp://a:1", "tcp://c:3"]
    assert sum("flaky failed" in r.message for r in caplog.records) == 1


# ---- SRV ------------------------------------------------------------------------


def srv_answer(request: bytes, records: list[tuple[int, int, int, str]]) -> bytes:
    """A DNS response to ``request`` with SRV records, names compressed against the question."""
    ident = request[:2]
    question = request[12:]
    header = ident + struct.pack(">HHHHH", 0x8180, 1, len(records), 0, 0)
    answers = b""
    for priority, weight, port, target in records:
        rdata = struct.pack(">HHH", priority, weight, port) + srv._encode_name(target)
        answers += b"\xc0\x0c" + struct.pack(">HHIH", 33, 1, 30, len(rdata)) + rdata
    return header + question + answers


@pytest.fixture
def dns_server() -> Iterator[tuple[str, int]]:
    """A one-name DNS server on loopback UDP: SRV records for _hm._tcp.mesh.test."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                request, peer = sock.recvfrom(512)
            except OSError:
                return
            if b"\x03_hm\x04_tcp\x04mesh\x04test\x00" in request:
                records = [(10, 5, 7002, "b.mesh.test"), (0, 5, 7001, "a.mesh.test")]
                sock.sendto(srv_answer(request, records), peer)
            else:  # NXDOMAIN
                sock.sendto(
                    request[:2] + struct.pack(">HHHHH", 0x8183, 1, 0, 0, 0) + request[12:], peer
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()
    finally:
        stop.set()
        sock.close()
        thread.join(5)


def test_srv_seeds_are_targets_and_ports_in_priority_order(dns_server: tuple[str, int]) -> None:
    host, port = dns_server
    seeds = provider(f"srv:_hm._tcp.mesh.test@{host}:{port}")
    assert seeds is not None
    assert list(seeds()) == ["tcp://a.mesh.test:7001", "tcp://b.mesh.test:7002"]


def test_srv_lookup_of_an_unknown_name_fails_clearly(dns_server: tuple[str, int]) -> None:
    with pytest.raises(LookupError, match="no SRV record"):
        srv.lookup("_other._tcp.mesh.test.", nameservers=[dns_server], timeout=2)


def test_srv_parse_refuses_garbage_and_pointer_loops() -> None:
    with pytest.raises(ValueError):
        srv.parse(b"\x00\x01", 1)
    looping = struct.pack(">HHHHHH", 7, 0x8180, 1, 0, 0, 0) + b"\xc0\x0c"
    with pytest.raises(ValueError):
        srv.parse(looping, 7)
