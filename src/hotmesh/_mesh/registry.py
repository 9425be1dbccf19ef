"""The per-host registry of local nodes, like Erlang's epmd but files: one JSON
file per node under ``hotmesh._paths.registry_dir()`` (file I/O)."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hotmesh._errors import ConfigError, NameInUse
from hotmesh._files import atomic_write_text
from hotmesh._paths import NODE_NAME_RE, full_node_name, registry_dir
from hotmesh._record import record

try:
    import fcntl
except ImportError:  # not POSIX: registrations are not serialised between processes
    fcntl = None  # type: ignore[assignment]

__all__ = ["Entry", "entries", "is_alive", "lookup", "register", "unregister"]

_FORMAT = 1


@record(frozen=True)
class Entry:
    """One local node: where it listens and which process runs it.

    Attributes:
        name: full node name, ``name@host``.
        endpoint: the node's ZeroMQ endpoint, e.g. ``tcp://127.0.0.1:5555``.
        pid: the process running the node.
        started_at: when it registered (``time.time()``).
        state_dir: its state directory, or None.
    """

    name: str
    endpoint: str
    pid: int
    started_at: float
    state_dir: str | None


def register(
    name: str,
    endpoint: str,
    *,
    pid: int | None = None,
    state_dir: str | os.PathLike[str] | None = None,
) -> Entry:
    """Record that ``name`` runs here and listens on ``endpoint``.

    The entry file is written atomically (temporary file, fsync, rename,
    directory fsync), under a lock shared by every registering process on this
    host. Registering again from the same process replaces the entry; an entry
    left by a dead process is replaced.

    Args:
        name: ``name`` or ``name@host`` (``@`` and this host's short name are added).
        endpoint: where the node listens.
        pid: the node's process, default this one.
        state_dir: the node's state directory, recorded for tools.

    Raises:
        ConfigError: the name is not a valid node name.
        NameInUse: a live process already holds that name on this host.
    """
    full = _full_name(name)
    entry = Entry(
        name=full,
        endpoint=endpoint,
        pid=os.getpid() if pid is None else pid,
        started_at=time.time(),
        state_dir=None if state_dir is None else os.fspath(state_dir),
    )
    path = _path(full)
    with _locked():
        current = _read(path)
        if current is not None and current[0].pid != entry.pid and _holds(current):
            holder = current[0]
            raise NameInUse(
                f"node name {full} is already used on this host by process {holder.pid} "
                f"(listening on {holder.endpoint}); choose another name or stop that node"
            )
        _write(path, entry)
    return entry


def unregister(name: str, *, pid: int | None = None) -> None:
    """Remove the entry of ``name``; with ``pid``, only if that process holds it.

    Removing an entry that does not exist does nothing.
    """
    path = _path(_full_name(name))
    with _locked():
        current = _read(path)
        if current is None or (pid is not None and current[0].pid != pid):
            return
        path.unlink(missing_ok=True)


def lookup(name: str) -> Entry | None:
    """The live entry of ``name`` (``name`` or ``name@host``), else None.

    A bare ``name`` means ``name@<this host>`` first, then the only other
    ``name@*`` entry, if there is exactly one. Entries of dead processes are
    deleted on the way.
    """
    exact = _live(_path(_full_name(name)))
    if exact is not None or "@" in name:
        return exact
    others = list(_scan(f"{name}@*.json"))
    return others[0] if len(others) == 1 else None


def entries() -> list[Entry]:
    """Every live local node, sorted by name; entries of dead processes are deleted."""
    return sorted(_scan("*@*.json"), key=lambda entry: entry.name)


def is_alive(pid: int) -> bool:
    """True when a process with this pid exists (``os.kill(pid, 0)``) and, where
    ``/proc`` tells, is not a zombie (dead, not yet reaped by its parent: a
    container whose first process never reaps keeps such entries)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:
        pass  # exists, owned by someone else
    except (ProcessLookupError, OSError):
        return False
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # "pid (comm) state ...": comm may hold spaces and parentheses.
            return stat.read().rpartition(b")")[2].split()[:1] == [b"Z"]
    except OSError:
        return False  # no /proc (macOS), or gone since


# ------------------------------------------------------------------ helpers


def _full_name(name: str) -> str:
    full = full_node_name(name)
    if not NODE_NAME_RE.match(full):
        raise ConfigError(
            f"bad node name {name!r}: use letters, digits, '_', '.', '-', as name or name@host"
        )
    return full


def _path(full: str) -> Path:
    return registry_dir() / f"{full}.json"


def _process_start(pid: int) -> str | None:
    """When the process started, as the kernel counts it (Linux), else None.

    Stored next to the pid so that an unrelated process that got a dead node's
    pid is not taken for the node.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            stat = file.read()
    except OSError:
        return None
    # Field 22 (starttime), counted after the parenthesised command name,
    # which may itself hold spaces and parentheses.
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else None


def _holds(record: tuple[Entry, str | None]) -> bool:
    """True when the process that wrote the entry still runs."""
    entry, started = record
    if not is_alive(entry.pid):
        return False
    if started is None:
        return True
    now_started = _process_start(entry.pid)
    return now_started is None or now_started == started


def _read(path: Path) -> tuple[Entry, str | None] | None:
    """The entry in ``path`` and its process start stamp; None if absent or unreadable."""
    try:
        raw: Any = json.loads(path.read_bytes())
        entry = Entry(
            name=str(raw["name"]),
            endpoint=str(raw["endpoint"]),
            pid=int(raw["pid"]),
            started_at=float(raw["started_at"]),
            state_dir=None if raw.get("state_dir") is None else str(raw["state_dir"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    started = raw.get("pid_start")
    return entry, None if started is None else str(started)


def _write(path: Path, entry: Entry) -> None:
    record = {
        "format": _FORMAT,
        "name": entry.name,
        "endpoint": entry.endpoint,
        "pid": entry.pid,
        "pid_start": _process_start(entry.pid),
        "started_at": entry.started_at,
        "state_dir": entry.state_dir,
    }
    atomic_write_text(path, json.dumps(record))


def _live(path: Path) -> Entry | None:
    record = _read(path)
    if record is None:
        return None
    if _holds(record):
        return record[0]
    _remove_stale(path, record[0])
    return None


def _scan(pattern: str) -> Iterator[Entry]:
    directory = registry_dir()
    if not directory.is_dir():
        return
    for path in sorted(directory.glob(pattern)):
        entry = _live(path)
        if entry is not None:
            yield entry


def _remove_stale(path: Path, stale: Entry) -> None:
    """Delete a dead process's entry unless someone replaced it meanwhile."""
    with _locked():
        current = _read(path)
        if current is not None and current[0] == stale:
            path.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """Hold the registry lock (a flock on ``.lock``) for a read-check-write."""
    directory = registry_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if fcntl is None:
        yield
        return
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
