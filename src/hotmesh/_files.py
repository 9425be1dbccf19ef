"""Atomic, durable file writes: replace (temp + fsync + rename + directory fsync),
fsynced appends, and the JSON reads that go with them. Does file I/O."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

_TEMP_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def make_temp(folder: str | os.PathLike[str], prefix: str, suffix: str = "") -> tuple[int, str]:
    """Create a new file readable by its owner only in ``folder``: ``(fd, path)``.

    ``tempfile.mkstemp`` without the tempfile module, which loads shutil and
    with it the bz2, lzma and zlib libraries into every node (a random name,
    created exclusively, tried again if taken).

    Raises:
        OSError: the folder cannot take the file.
    """
    for _ in range(100):
        path = os.path.join(folder, f"{prefix}{os.urandom(6).hex()}{suffix}")
        try:
            return os.open(path, _TEMP_FLAGS, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name in {folder}")


def fsync_dir(directory: Path) -> None:
    """Flush a directory entry (a rename inside it) to disk."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``text`` so that a crash leaves the old or the new file.

    Writes a temp file in the same directory, gives it ``mode`` (exactly: the
    umask does not apply), fsyncs it, renames it over ``path`` and fsyncs the
    directory so the rename itself survives power loss. The parent directory
    is created when missing. On any failure the temp file is removed and
    ``path`` is untouched.

    Args:
        path: the file to replace.
        text: its whole new content, written as UTF-8.
        mode: the permission bits of the new file (default owner-only).

    Raises:
        OSError: the directory, the temp file, the write or the rename failed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = make_temp(path.parent, f".{path.name}.", ".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), mode)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_json(path: Path, value: Any, *, mode: int = 0o600) -> None:
    """``atomic_write_text`` of ``value`` as indented, key-sorted JSON.

    Raises TypeError or ValueError (before anything is written) if ``value``
    is not JSON-serialisable, and OSError as ``atomic_write_text``.
    """
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n", mode=mode)


def read_json(path: Path, default: Any) -> Any:
    """The JSON value in ``path``, or ``default`` when the file does not exist.

    Raises ValueError if the file is not valid JSON, OSError if it cannot be read.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return default
    return json.loads(text)


def append_line(path: Path, line: str) -> None:
    """Append one line to ``path`` and fsync it (an audit/history log)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line.rstrip("\n") + "\n")
        f.flush()
        os.fsync(f.fileno())
