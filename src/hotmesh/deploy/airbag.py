"""The airbag: provisional upgrades that switch back on their own unless
confirmed in time, health checks, the on-disk record that makes a restarted
node come back on the previous release, and the one-line notices of each
window (opened, confirmed, reverted; ``notices``). Threads and file I/O."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hotmesh import code
from hotmesh._errors import CodeError, DeployError
from hotmesh._files import atomic_write_json, atomic_write_text, read_json
from hotmesh._record import record
from hotmesh._rpc.fanout import Unreachable, is_unreachable, reason_of, resolve_targets, run_on
from hotmesh.deploy import _services
from hotmesh.deploy._state import RECORD_NAME, Deployment
from hotmesh.deploy.notices import announce
from hotmesh.deploy.release import MANIFEST_NAME
from hotmesh.deploy.window import ProvisionalWindow

log = logging.getLogger("hotmesh.deploy.airbag")

_checks_lock = threading.Lock()
_health_checks: dict[str, Callable[[], Any]] = {}


def register_health_check(fn: Callable[[], Any], name: str | None = None) -> str:
    """Add a health check run during every provisional upgrade's window.

    ``fn()`` passes unless it raises or returns ``False``; a failure reverts
    the provisional upgrade at once. Registering the same name again replaces
    the check. Returns the name (default: the function's qualified name).
    """
    if not callable(fn):
        raise TypeError(f"health check {fn!r} is not callable")
    key = str(name or getattr(fn, "__qualname__", None) or repr(fn))
    with _checks_lock:
        _health_checks[key] = fn
    return key


def unregister_health_check(name: str) -> bool:
    """Remove the health check ``name``; True if it was registered."""
    with _checks_lock:
        return _health_checks.pop(name, None) is not None


def run_health_checks() -> str | None:
    """Run every registered check; None when all pass, else why the first failed."""
    with _checks_lock:
        checks = list(_health_checks.items())
    for name, fn in checks:
        try:
            result = fn()
        except Exception as exc:
            return f"{name} raised {type(exc).__name__}: {exc}"
        if result is False:
            return f"{name} returned False"
    return None


@record
class Armed:
    """A provisional upgrade being watched: its record and window."""

    record: dict[str, Any]
    window: ProvisionalWindow


class Airbag:
    """The provisional upgrade of one deployment (at most one at a time).

    ``arm`` writes the record (with a snapshot of the previous sources) before
    the switch, ``start`` starts the watcher thread after it; the watcher
    reverts at the deadline or on a failed health check unless ``confirm``
    comes first. Every decision is written to disk before it is announced.
    """

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.path = deployment.state_dir / RECORD_NAME
        self._armed: Armed | None = None
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def pending(self) -> dict[str, Any] | None:
        """The record of the provisional upgrade in its window, or None."""
        armed = self._armed
        return armed.record if armed is not None and armed.window.is_pending else None

    def arm(
        self, record: dict[str, Any], window: float, *, snapshot: dict[str, code.Version | None]
    ) -> None:
        """Write the record and the previous sources to disk (before the switch).

        ``snapshot`` maps each module about to change to the version it runs
        now (None for a module new in this upgrade).

        Raises:
            ValueError: ``window`` is not a positive number of seconds.
        """
        opened = ProvisionalWindow.open(time.monotonic(), window)
        now = time.time()
        snap_dir = self.deployment.state_dir / "snapshot"
        for stale in snap_dir.glob("*.py") if snap_dir.is_dir() else ():
            stale.unlink()
        files: dict[str, dict[str, str | None]] = {}
        for mod, version in snapshot.items():
            snap: str | None = None
            if version is not None and version.source is not None:
                snap = str(snap_dir / f"{mod}.py")
                atomic_write_text(Path(snap), version.source)
            files[mod] = {"path": version.path if version else None, "snapshot": snap}
        if self.deployment.manifest_text is not None:
            atomic_write_text(snap_dir / MANIFEST_NAME, self.deployment.manifest_text)
        record = {
            **record,
            "state": "provisional",
            "started_at": now,
            "deadline": now + window,
            "window": window,
            "files": files,
        }
        atomic_write_json(self.path, record)
        self._armed = Armed(record, opened)

    def update_record(self, **fields: Any) -> None:
        """Change fields of the armed record, on disk too."""
        armed = self._armed
        if armed is not None:
            armed.record.update(fields)
            atomic_write_json(self.path, armed.record)

    def note_new_paths(self, paths: dict[str, str | None]) -> None:
        """Record where the modules new in this upgrade live (after the switch)."""
        armed = self._armed
        if armed is None:
            return
        for mod, path in paths.items():
            armed.record["files"].setdefault(mod, {"snapshot": None})["path"] = path
        atomic_write_json(self.path, armed.record)

    def disarm(self) -> None:
        """Forget an armed upgrade whose switch did not happen (or was undone)."""
        self._armed = None
        self.path.unlink(missing_ok=True)

    def start(self) -> None:
        """Watch the window: revert at the deadline or on a failed health check."""
        armed = self._armed
        if armed is not None:
            record = armed.record
            announce(
                self.deployment.node_name,
                f"airbag: {self.deployment.node_name} runs {record['version_after']} "
                f"provisionally; it reverts to {record['version_before']} in "
                f"{record['window']:g} s unless confirmed (confirm() on it, "
                f"or hotmesh.deploy.confirm([{self.deployment.node_name!r}]) from any node)",
            )
        self._wake.set()
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._watch, name="hotmesh-airbag", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the watcher (node stop). An unconfirmed upgrade reverts at next start."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)

    def confirm(self) -> str:
        """Make the provisional upgrade permanent: persist, then drop the old code.

        Returns a one-line status. Harmless when nothing is provisional.

        Raises:
            DeployError: the upgrade was already reverted (the message says why).
        """
        with self.deployment.lock:
            armed = self._armed
            if armed is None:
                last = read_json(self.path, {})
                dep = self.deployment
                # Only while the node still runs what it reverted to: a later
                # upgrade makes that old story irrelevant.
                if last.get("state") == "reverted" and last.get("version_before") == dep.version():
                    raise DeployError(
                        f"too late: the provisional upgrade to {last.get('version_after')} "
                        f"was reverted ({last.get('reason')})"
                    )
                return f"nothing to confirm: {dep.node_name} runs {dep.version()}"
            if not armed.window.confirm(time.monotonic()):
                raise DeployError(
                    f"too late: the provisional upgrade to {armed.record['version_after']} "
                    f"was reverted ({armed.window.reason})"
                )
            record = {**armed.record, "state": "confirmed", "decided_at": time.time()}
            atomic_write_json(self.path, record)
            self._armed = None
            self._wake.set()
            for mod in record.get("removed", []):
                _delete_quietly(mod)
            lingering = [m for m in record["modules"] if not _soft_purge(m)]
        log.info("provisional upgrade to %s confirmed", record["version_after"])
        announce(
            self.deployment.node_name,
            f"airbag: {self.deployment.node_name} confirmed {record['version_after']} "
            "(kept across restarts)",
        )
        text = f"confirmed {record['version_after']}"
        return text + (f"; old code still running in {', '.join(lingering)}" if lingering else "")

    def _watch(self) -> None:
        while not self._stopping:
            # Cleared before reading the state, so a wake-up set after it is never lost.
            self._wake.clear()
            armed = self._armed
            wait = armed.window.wait_time(time.monotonic()) if armed else None
            if armed is None or wait is None:
                self._wake.wait()
                continue
            if wait > 0 and self._wake.wait(wait):
                continue
            try:
                self._step(armed)
            except Exception:
                # The watcher must outlive any failure; a restart still reverts.
                log.exception("airbag watcher of %s failed", self.deployment.node_name)

    def _step(self, armed: Armed) -> None:
        due = armed.window.due(time.monotonic())
        if due == "check":
            failure = run_health_checks()
            with self.deployment.lock:
                if armed.window.checked(time.monotonic(), failure):
                    self._revert(armed)
        elif due == "revert":
            with self.deployment.lock:
                if armed.window.expire(time.monotonic()):
                    self._revert(armed)

    def revert_now(self, reason: str) -> bool:
        """Revert the provisional upgrade at once (e.g. a failed check); True if it did."""
        with self.deployment.lock:
            armed = self._armed
            if armed is None or not armed.window.revert(time.monotonic(), reason):
                return False
            self._revert(armed)
            return True

    def _revert(self, armed: Armed) -> None:
        record = armed.record
        decided = {**record, "state": "reverted", "reason": armed.window.reason}
        # On disk first: whoever sees the old code again also finds why.
        atomic_write_json(self.path, {**decided, "decided_at": time.time()})
        self._armed = None
        started = time.perf_counter()
        release_after, self.deployment.release = self.deployment.release, record["release_before"]
        try:
            code.revert(record["modules"])
        except CodeError as exc:
            self.deployment.release = release_after
            # Still "provisional" on disk: a restart comes back on the previous release.
            atomic_write_json(self.path, {**record, "revert_error": str(exc)})
            log.error("airbag could not revert %s: %s", record["modules"], exc)
            announce(
                self.deployment.node_name,
                f"airbag: {self.deployment.node_name} could NOT revert to "
                f"{record['version_before']} ({armed.window.reason}): {exc}; "
                "a restart comes back on the previous release",
            )
            return
        elapsed = (time.perf_counter() - started) * 1000
        self.deployment.manifest_text = record.get("manifest_before")
        if record.get("previous_dir"):
            self.deployment.running_dir = Path(record["previous_dir"])
        self.deployment.upgraded_at = None  # this node's last upgrade is undone
        # Gone from memory again: the next upgrade must see them as new.
        self.deployment.known_modules -= set(record.get("new_modules", []))
        problems = _services.migrate(record["modules"])
        log.warning(
            "provisional upgrade %s -> %s reverted on %s in %.1f ms: %s%s",
            record["version_before"],
            record["version_after"],
            self.deployment.node_name,
            elapsed,
            armed.window.reason,
            f" (services: {problems})" if problems else "",
        )
        announce(
            self.deployment.node_name,
            f"airbag: {self.deployment.node_name} reverted to {record['version_before']} "
            f"in {elapsed:.1f} ms: {armed.window.reason}"
            + (f" (services: {'; '.join(problems)})" if problems else ""),
        )


def _soft_purge(mod: str) -> bool:
    try:
        return code.old_version(mod) is None or code.soft_purge(mod)
    except CodeError:
        return False


def _delete_quietly(mod: str) -> None:
    try:
        if code.soft_purge(mod):
            code.delete(mod)
    except CodeError as exc:
        log.warning("could not delete removed module %s: %s", mod, exc)


_airbags: dict[int, Airbag] = {}
_airbags_lock = threading.Lock()


def airbag_for(deployment: Deployment) -> Airbag:
    """The airbag of ``deployment`` (one per deployment)."""
    with _airbags_lock:
        bag = _airbags.get(id(deployment))
        if bag is None or bag.deployment is not deployment:
            bag = _airbags[id(deployment)] = Airbag(deployment)
        return bag


def drop_airbag(deployment: Deployment) -> None:
    """Stop and forget the airbag of ``deployment`` (node stop)."""
    with _airbags_lock:
        bag = _airbags.pop(id(deployment), None)
    if bag is not None:
        bag.stop()


def confirm_local() -> str:
    """Confirm this node's provisional upgrade (see ``confirm``)."""
    from hotmesh.deploy import _state

    return airbag_for(_state.current()).confirm()


def confirm(nodes: str | Iterable[str] | None = None, *, timeout: float = 10.0) -> Any:
    """Confirm the provisional upgrade: on this node, or on ``nodes`` (a list or ``"all"``).

    The confirmation is written to disk before the old code is dropped, so a
    confirmed node stays on the new release across restarts. Harmless on a
    node with nothing to confirm.

    Returns:
        This node's status line, or ``{node: status line | Unreachable}``.

    Raises:
        DeployError: (this node only) the upgrade was already reverted.
    """
    if nodes is None:
        return confirm_local()
    outcome = run_on(resolve_targets(nodes), "hotmesh.deploy.airbag.confirm_local", timeout=timeout)
    result: dict[str, Any] = {}
    for name, (ok, value) in outcome.items():
        if ok:
            result[name] = value
        elif is_unreachable(value):
            result[name] = Unreachable(reason_of(value))
        else:
            result[name] = f"failed: {reason_of(value)}"
    return result
