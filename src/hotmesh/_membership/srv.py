"""DNS SRV lookups (RFC 2782) with the standard library: one query over UDP (TCP if truncated).

The stdlib resolver (getaddrinfo) knows A and AAAA only. This module sends
one SRV question to the nameservers of ``/etc/resolv.conf`` (or given ones)
and parses the answer section, following name compression (RFC 1035 4.1.4).
Network I/O; blocks up to ``timeout`` per server.
"""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

SRV, IN = 33, 1
Record = tuple[int, int, int, str]
"""``(priority, weight, port, target)``."""


def lookup(
    name: str,
    *,
    nameservers: list[tuple[str, int]] | None = None,
    timeout: float = 2.0,
) -> list[Record]:
    """The SRV records of ``name``; tries the resolv.conf search list for a relative name.

    Raises:
        LookupError: no server answered, or the name has no SRV record.
    """
    servers, search = _resolv_conf()
    servers = nameservers or servers or [("127.0.0.1", 53)]
    candidates = [name.rstrip(".")]
    if not name.endswith("."):
        candidates += [f"{name}.{domain}" for domain in search]
    problems: list[str] = []
    for candidate in candidates:
        for server in servers:
            try:
                records = _ask(candidate, server, timeout)
            except (OSError, ValueError) as exc:
                problems.append(f"{server[0]}:{server[1]}: {exc}")
                continue
            if records:
                return records
            problems.append(f"{candidate}: no SRV record")
            break  # this server answered: the name has none, try the next candidate
    raise LookupError(f"SRV lookup of {name} failed ({'; '.join(problems)})")


def _resolv_conf(path: Path = Path("/etc/resolv.conf")) -> tuple[list[tuple[str, int]], list[str]]:
    servers: list[tuple[str, int]] = []
    search: list[str] = []
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return servers, search
    for line in lines:
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and words[0] == "nameserver":
            servers.append((words[1], 53))
        elif words and words[0] in ("search", "domain"):
            search = words[1:]
    return servers, search


def query(name: str, ident: int) -> bytes:
    """The bytes of one recursive SRV question for ``name``."""
    header = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    return header + _encode_name(name) + struct.pack(">HH", SRV, IN)


def _encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("idna") if label else b""
        if not 0 < len(raw) < 64:
            raise ValueError(f"bad DNS name {name!r}")
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def _ask(name: str, server: tuple[str, int], timeout: float) -> list[Record]:
    ident = int.from_bytes(os.urandom(2), "big")
    packet = query(name, ident)
    family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect(server)
        sock.send(packet)
        while True:
            data = sock.recv(65535)
            if len(data) >= 2 and struct.unpack(">H", data[:2])[0] == ident:
                break
    if len(data) >= 4 and data[2] & 0x02:  # truncated: ask again over TCP
        with socket.create_connection(server, timeout) as conn:
            conn.sendall(struct.pack(">H", len(packet)) + packet)
            size = struct.unpack(">H", _read(conn, 2))[0]
            data = _read(conn, size)
    return parse(data, ident)


def _read(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise OSError("connection closed mid-answer")
        data += chunk
    return data


def parse(data: bytes, ident: int) -> list[Record]:
    """The SRV records in the answer section of a DNS response.

    Raises:
        ValueError: a malformed response, another id, or a server error
            (NXDOMAIN gives an empty list).
    """
    if len(data) < 12:
        raise ValueError("short DNS response")
    got, flags, qdcount, ancount = struct.unpack(">HHHH", data[:8])
    if got != ident:
        raise ValueError("DNS response for another query")
    rcode = flags & 0x0F
    if rcode == 3:
        return []
    if rcode:
        raise ValueError(f"DNS server error (rcode {rcode})")
    offset = 12
    for _ in range(qdcount):
        _, offset = _decode_name(data, offset)
        offset += 4
    records: list[Record] = []
    for _ in range(ancount):
        _, offset = _decode_name(data, offset)
        if offset + 10 > len(data):
            raise ValueError("truncated DNS record")
        rtype, rclass, _ttl, length = struct.unpack(">HHIH", data[offset : offset + 10])
        offset += 10
        if offset + length > len(data):
            raise ValueError("truncated DNS record")
        if rtype == SRV and rclass == IN and length >= 7:
            priority, weight, port = struct.unpack(">HHH", data[offset : offset + 6])
            target, _ = _decode_name(data, offset + 6)
            records.append((priority, weight, port, target))
        offset += length
    return records


def _decode_name(data: bytes, offset: int) -> tuple[str, int]:
    """The name at ``offset`` and the offset after it (pointers followed, loops refused)."""
    labels: list[str] = []
    end = -1
    jumps = 0
    while True:
        if offset >= len(data):
            raise ValueError("truncated DNS name")
        size = data[offset]
        if size & 0xC0 == 0xC0:
            if offset + 1 >= len(data) or jumps > 32:
                raise ValueError("bad DNS name pointer")
            if end < 0:
                end = offset + 2
            offset = ((size & 0x3F) << 8) | data[offset + 1]
            jumps += 1
            continue
        if size & 0xC0:
            raise ValueError("bad DNS label")
        offset += 1
        if size == 0:
            break
        labels.append(data[offset : offset + size].decode("ascii", "replace"))
        offset += size
    return ".".join(labels), end if end >= 0 else offset
