"""Where hotmesh keeps files: state directory, registry, default cookie (no I/O
beyond reading the environment)."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

NODE_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+$")


def state_root() -> Path:
    """The user's hotmesh state directory.

    ``$HOTMESH_STATE_DIR`` if set, else ``$XDG_STATE_HOME/hotmesh``, else
    ``~/.local/state/hotmesh``.
    """
    if env := os.environ.get("HOTMESH_STATE_DIR"):
        return Path(env)
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "hotmesh"


def registry_dir() -> Path:
    """Directory of the per-host registry of local nodes (one file per node)."""
    return state_root() / "registry"


def node_state_dir(name: str) -> Path:
    """Default state directory of one node (audit log, settings, deploy records)."""
    return state_root() / "nodes" / name


def default_cookie_file() -> Path:
    """``$HOTMESH_COOKIE_FILE`` if set, else ``~/.hotmesh.cookie``."""
    if env := os.environ.get("HOTMESH_COOKIE_FILE"):
        return Path(env)
    return Path.home() / ".hotmesh.cookie"


def short_hostname() -> str:
    """This host's short name (the part before the first dot)."""
    return socket.gethostname().split(".")[0] or "localhost"


def full_node_name(name: str) -> str:
    """``name`` with ``@host`` appended when it has no host part."""
    return name if "@" in name else f"{name}@{short_hostname()}"
