"""Release handling when a node starts: come back on the previous release if a
provisional upgrade was never confirmed, put the release dir on ``sys.path``
and its packages under the code server, run the release's upgrade actions not
yet run here. File I/O (release dir, state dir)."""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hotmesh import code
from hotmesh._errors import ConfigError, DeployError
from hotmesh._files import (
    append_line,
    atomic_write_json,
    atomic_write_text,
    fsync_dir,
    read_json,
)
from hotmesh._runtime import NodeLike
from hotmesh._tick import DEFAULT_TICK
from hotmesh.deploy import _newcomers
from hotmesh.deploy._state import RECORD_NAME, Deployment, install, uninstall
from hotmesh.deploy.action_log import record_key
from hotmesh.deploy.release import (
    MANIFEST_NAME,
    UNRELEASED,
    parse_manifest,
    read_manifest,
    release_of,
)

log = logging.getLogger("hotmesh.deploy")


def start(node: NodeLike) -> Callable[[], None]:
    """Node extension: set up this node's deployment; returns its stop callable.

    Raises:
        ConfigError: the release dir has no valid manifest.
    """
    release = node.options.get("release")
    deployment = Deployment(
        node.name,
        Path(node.state_dir) / "deploy",
        Path(os.path.abspath(release)) if release else None,
    )
    recover(deployment)
    if deployment.release_path is not None:
        _enter_release(deployment)
    deployment.known_modules = set(code.available_modules())
    deployment.upgraded_at = _last_upgrade(deployment)
    install(deployment)
    # Installed (an action may use the deploy API) but not ready: a peer
    # asking for this node's status waits until its actions have run. The
    # node is in the mesh already: an upgrade_node called from a peer now
    # waits for the lock, then finds the actions done.
    with deployment.lock:
        run_release_actions(deployment)
    deployment.started = True
    stop_watching = _newcomers.watch(node, deployment)
    stop_preload: Callable[[], None] | None = None
    if deployment.release_path is not None:
        # A node with a release is one that upgrades: its code server's parts
        # load once it has settled, not in its first upgrade (while it serves
        # clients). A node without one loads neither them nor the preloader.
        from hotmesh.deploy import _preload

        stop_preload = _preload.start(float(node.options.get("tick", DEFAULT_TICK)))

    def stop() -> None:
        if stop_preload is not None:
            stop_preload()
        stop_watching()
        # The airbag is made by the first upgrade or status that needs it: a
        # node that had neither has none to drop (nor imported its module).
        airbag = sys.modules.get("hotmesh.deploy.airbag")
        if airbag is not None:
            airbag.drop_airbag(deployment)
        uninstall(deployment)

    return stop


def run_release_actions(deployment: Deployment) -> list[str]:
    """Run the upgrade actions of the release this node starts on that never ran here.

    A node restarted onto a release's files before its turn in a rolling
    upgrade (or started on it for the first time) gets them now, each
    recorded once as an upgrade records it, before the node's app runs. One
    that raises is not recorded and stops the rest (they may depend on it):
    they stay pending (``node_status()["pending"]`` says why), so the node is
    not at its release until an upgrade runs them. Returns the ids run.
    """
    if not deployment.manifest_text:
        return []
    # Only a node with a release has actions: the others never import them.
    from hotmesh.deploy._job import describe, release_actions
    from hotmesh.deploy.actions import pending

    book = deployment.action_log()
    release = deployment.release
    try:
        declared = release_actions(parse_manifest(deployment.manifest_text))
        todo = pending(declared, book.records(), release)
    except DeployError as exc:  # one started and never finished: left to the engineer
        log.warning(
            "%s: upgrade actions of %s not run at start: %s", deployment.node_name, release, exc
        )
        return []
    if not todo:
        return []
    started, old_version = time.time(), deployment.version()
    ran: list[str] = []
    for action in todo:
        raised = book.run(record_key(release, action.id), action.run)
        if raised is not None:
            reason = describe(raised)
            deployment.failed_at_start[action.id] = reason
            log.warning(
                "%s: upgrade action %s of %s raised at start: %s; it stays pending "
                "(upgrade_node() runs it again)",
                deployment.node_name,
                action.id,
                release,
                reason,
            )
            if isinstance(raised, KeyboardInterrupt):
                raise raised
            break
        log.info(
            "%s: upgrade action %s of %s ran at start", deployment.node_name, action.id, release
        )
        ran.append(action.id)
    if ran:
        _record_start(deployment, old_version, ran, started)
    return ran


def _record_start(deployment: Deployment, old_version: str, ran: list[str], started: float) -> None:
    """Append the actions run at start to the node's upgrade history."""
    from hotmesh.deploy.report import UpgradeReport

    report = UpgradeReport(
        node=deployment.node_name,
        ok=True,
        old_version=old_version,
        new_version=deployment.version(),
        loaded=[],
        added={},
        removed=[],
        stale=[],
        actions=ran,
        lingering=[],
        provisional=None,
        seconds=round(time.time() - started, 6),
    )
    entry = {"at": time.time(), "at_start": True, **report}
    append_line(deployment.state_dir / "history.jsonl", json.dumps(entry, sort_keys=True))
    deployment.upgraded_at = entry["at"]


def _last_upgrade(deployment: Deployment) -> float | None:
    """When the last recorded upgrade brought this node to the release it runs, or None."""
    try:
        lines = (deployment.state_dir / "history.jsonl").read_text(encoding="utf-8").splitlines()
        last = json.loads(lines[-1]) if lines else {}
    except (OSError, ValueError):
        return None
    at = last.get("at") if isinstance(last, dict) else None
    version = str(last.get("new_version", "")) if isinstance(last, dict) else ""
    if isinstance(at, int | float) and release_of(version) == (deployment.release or UNRELEASED):
        return float(at)
    return None


def _enter_release(deployment: Deployment) -> None:
    path = deployment.release_path
    assert path is not None
    try:
        manifest = read_manifest(path)
    except DeployError as exc:
        raise ConfigError(f"release {path}: {exc}") from None
    # The path goes on sys.path as given (not resolved): when it is a symlink
    # switched to another release dir, imports and the code server see the
    # new files through it.
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
    importlib.invalidate_caches()
    for package in manifest.packages:
        code.add_root(package)
    deployment.release = manifest.version
    deployment.manifest_text = (path / MANIFEST_NAME).read_text(encoding="utf-8")
    deployment.running_dir = deployment.resolved_dir()


def recover(deployment: Deployment) -> str | None:
    """Undo on disk a provisional upgrade that was never confirmed (at start).

    Symlink layout: the release symlink points back at the previous release
    dir. Copy-over layout: the previous sources saved at the provisional
    upgrade are written back (the rejected files are kept under
    ``<state>/deploy/rejected/``), files new in the upgrade are moved there.
    Returns the reason logged, or None when there was nothing to undo.
    """
    path = deployment.state_dir / RECORD_NAME
    record = read_json(path, None)
    if not isinstance(record, dict) or record.get("state") != "provisional":
        return None
    reason = (
        f"node restarted before the provisional upgrade to {record.get('version_after')} "
        f"was confirmed: back on {record.get('version_before')}"
    )
    link = deployment.release_path
    previous = record.get("previous_dir")
    if record.get("layout") == "symlink" and link is not None and link.is_symlink() and previous:
        _repoint(link, Path(previous))
    else:
        _restore_files(deployment, record)
    atomic_write_json(
        path, {**record, "state": "reverted", "reason": reason, "decided_at": time.time()}
    )
    log.warning("%s: %s", deployment.node_name, reason)
    return reason


def _repoint(link: Path, target: Path) -> None:
    """Atomically make the symlink ``link`` point at ``target``."""
    tmp = link.with_name(f".{link.name}.hotmesh-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)
    fsync_dir(link.parent)


def _restore_files(deployment: Deployment, record: dict[str, Any]) -> None:
    import shutil  # only a restart after an unconfirmed upgrade restores files

    rejected = deployment.state_dir / "rejected" / str(record.get("release_after") or "release")
    rejected.mkdir(parents=True, exist_ok=True)
    for mod, info in (record.get("files") or {}).items():
        target = info.get("path")
        if not target:
            continue
        target_path = Path(target)
        if target_path.exists():
            shutil.copy2(target_path, rejected / f"{mod}.py")
        snapshot = info.get("snapshot")
        if snapshot and Path(snapshot).exists():
            atomic_write_text(target_path, Path(snapshot).read_text(encoding="utf-8"))
        else:
            target_path.unlink(missing_ok=True)
        _drop_bytecode(target_path)
    manifest_snapshot = deployment.state_dir / "snapshot" / MANIFEST_NAME
    if deployment.release_path is not None and manifest_snapshot.exists():
        manifest = deployment.release_path / MANIFEST_NAME
        if manifest.exists():
            shutil.copy2(manifest, rejected / MANIFEST_NAME)
        atomic_write_text(manifest, manifest_snapshot.read_text(encoding="utf-8"))


def _drop_bytecode(source: Path) -> None:
    # A restored file may get the size and mtime second of the rejected one,
    # which would make Python trust the rejected file's cached bytecode.
    if sys.implementation.cache_tag is None:  # this Python writes no bytecode cache
        return
    import importlib.util  # only a restart after an unconfirmed upgrade restores files

    with contextlib.suppress(ValueError):
        Path(importlib.util.cache_from_source(str(source))).unlink(missing_ok=True)
