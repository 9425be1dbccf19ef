"""The deployment this process runs: node name, deploy state dir, release path
and the running release version. Holds process-wide state; reads the manifest
and the code server, no other I/O."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from hotmesh import code
from hotmesh.deploy.release import Manifest, read_manifest, version_string


@dataclass
class Deployment:
    """What the deploy toolkit knows about this process's node.

    ``release_path`` is the release directory as configured: it may be a
    ``current`` symlink, so it is re-read at every upgrade. ``running_dir`` is
    the real directory the running code came from (the previous release dir
    of the symlink layout). ``known_modules`` are the managed modules present
    on disk at the last boot or upgrade: a module on disk that is not among
    them is new and gets loaded by the next upgrade.
    """

    node_name: str
    state_dir: Path
    release_path: Path | None = None
    release: str | None = None
    manifest_text: str | None = None
    running_dir: Path | None = None
    known_modules: set[str] = field(default_factory=set)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def read_manifest(self) -> Manifest | None:
        """The manifest on disk now (None without a release); raises DeployError."""
        if self.release_path is None:
            return None
        return read_manifest(self.release_path)

    def resolved_dir(self) -> Path | None:
        """The real directory the release path points at now."""
        return None if self.release_path is None else Path(os.path.realpath(self.release_path))

    def is_symlink_layout(self) -> bool:
        """True when the release path is a symlink switched between release dirs."""
        return self.release_path is not None and self.release_path.is_symlink()

    def version(self) -> str:
        """``"<release>+<fingerprint of the loaded managed modules>"``."""
        return version_string(self.release, managed_hashes())


def managed_hashes() -> dict[str, str]:
    """Source hash of the current version of every loaded managed module."""
    return {mod: current.hash for mod, (current, _old) in code.all_versions().items() if current}


_lock = threading.Lock()
_deployment: Deployment | None = None


def install(deployment: Deployment) -> None:
    """Make ``deployment`` the one this process runs (done by the node at start)."""
    global _deployment
    with _lock:
        _deployment = deployment


def uninstall(deployment: Deployment) -> None:
    """Forget ``deployment`` if it is still the installed one (node stop)."""
    global _deployment
    with _lock:
        if _deployment is deployment:
            _deployment = None


def current() -> Deployment:
    """The installed deployment; without one, a bare one for the running node.

    Raises:
        HotmeshError: no deployment was installed and no node runs here.
    """
    global _deployment
    with _lock:
        if _deployment is not None:
            return _deployment
    from hotmesh._node import current_node

    node = current_node()
    deployment = Deployment(node.name, Path(node.state_dir) / "deploy")
    deployment.known_modules = set(code.available_modules())
    with _lock:
        if _deployment is None:
            _deployment = deployment
        return _deployment


def installed() -> Deployment | None:
    """The installed deployment, or None (never creates one)."""
    with _lock:
        return _deployment
