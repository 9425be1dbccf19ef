"""The deployment this process runs: node name, deploy state dir, release path
and the running release version. Holds process-wide state; reads the manifest
and the code server, no other I/O."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from hotmesh import code
from hotmesh._record import field, record
from hotmesh._runtime import current_node, running_nodes
from hotmesh.deploy.action_log import ActionLog, record_key
from hotmesh.deploy.release import Manifest, read_manifest, version_string

RECORD_NAME = "provisional.json"
"""The airbag's record of a provisional upgrade, in the deploy state dir (read at
every start, to undo an upgrade never confirmed: ``hotmesh.deploy.airbag``)."""


@record
class Deployment:
    """What the deploy toolkit knows about this process's node.

    ``release_path`` is the release directory as configured: it may be a
    ``current`` symlink, so it is re-read at every upgrade. ``running_dir`` is
    the real directory the running code came from (the previous release dir
    of the symlink layout). ``known_modules`` are the managed modules present
    on disk at the last boot or upgrade: a module on disk that is not among
    them is new and gets loaded by the next upgrade. ``upgraded_at`` is when
    an upgrade last changed this node (from its history at start), or None.
    ``started`` is False for the bare deployment of a node whose deploy
    extension has not run yet (it is still starting). ``failed_at_start``
    holds the release's upgrade actions that raised when the node started
    (id -> why), until an upgrade runs them.
    """

    node_name: str
    state_dir: Path
    release_path: Path | None = None
    release: str | None = None
    manifest_text: str | None = None
    running_dir: Path | None = None
    known_modules: set[str] = field(default_factory=set)
    upgraded_at: float | None = None
    started: bool = False
    failed_at_start: dict[str, str] = field(default_factory=dict)
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
        """``"<release>+<fingerprint>"`` of the loaded managed modules and the
        release's upgrade actions done on this node."""
        return version_string(self.release, managed_hashes(), self.actions_done())

    def action_log(self) -> ActionLog:
        """The record of the upgrade actions run on this node."""
        return ActionLog(self.state_dir / "actions.json")

    def actions_done(self, release: str | None = None) -> list[str]:
        """Ids of the upgrade actions of ``release`` (default: the running one) done here."""
        prefix = record_key(release or self.release, "")
        return sorted(
            key[len(prefix) :]
            for key, record in self.action_log().records().items()
            if key.startswith(prefix) and record.get("state") == "done"
        )


def managed_hashes() -> dict[str, str]:
    """Source hash of the current version of every loaded managed module."""
    return {mod: current.hash for mod, (current, _old) in code.all_versions().items() if current}


_lock = threading.Lock()
_deployments: dict[str, Deployment] = {}
# Bare deployments made on demand by current() for a node that had none
# installed: forgotten once that node no longer runs (nothing uninstalls them).
_made: set[str] = set()


def _forget_stopped() -> None:
    """Drop the on-demand deployments of nodes that stopped (caller holds _lock)."""
    if not _made:
        return
    running = {node.name for node in running_nodes()}
    for name in list(_made - running):
        _made.discard(name)
        _deployments.pop(name, None)


def install(deployment: Deployment) -> None:
    """Make ``deployment`` the one of its node in this process (done at node start)."""
    with _lock:
        _deployments[deployment.node_name] = deployment
        _made.discard(deployment.node_name)


def uninstall(deployment: Deployment) -> None:
    """Forget ``deployment`` if it is still its node's (node stop)."""
    with _lock:
        if _deployments.get(deployment.node_name) is deployment:
            del _deployments[deployment.node_name]


def current() -> Deployment:
    """The deployment of the node this code runs on.

    That is the only one installed, or, when several nodes share the process,
    the one of the node running the current call. Without any, a bare one is
    made for the running node (no release: version ``unreleased+...``).

    Raises:
        HotmeshError: no deployment fits and no node runs here.
    """
    with _lock:
        _forget_stopped()
        if len(_deployments) == 1:
            return next(iter(_deployments.values()))
    node = current_node()
    with _lock:
        found = _deployments.get(node.name)
    if found is not None:
        return found
    deployment = Deployment(node.name, Path(node.state_dir) / "deploy")
    deployment.known_modules = set(code.available_modules())
    with _lock:
        if node.name not in _deployments:
            _made.add(node.name)
        return _deployments.setdefault(node.name, deployment)


def installed() -> Deployment | None:
    """The single installed deployment, or None (never creates one)."""
    with _lock:
        return next(iter(_deployments.values())) if len(_deployments) == 1 else None
