"""One run of ``upgrade_node``: the steps in Erlang's release-handler order
(purge, check, load, migrate, actions, purge, record), which the dry run also
walks without changing anything. Drives the code server and writes the node's
deploy records."""

from __future__ import annotations

import importlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from hotmesh import code
from hotmesh._errors import CodeError, DeployError, UpgradeError, XrefError
from hotmesh._files import append_line
from hotmesh._gil import machine_turn
from hotmesh._paths import state_root
from hotmesh._record import record
from hotmesh.code.dependent_modules import RERUN_FLAG
from hotmesh.deploy import _services, _state
from hotmesh.deploy.action_log import ActionLog, record_key
from hotmesh.deploy.actions import UpgradeAction, merged, normalize, pending
from hotmesh.deploy.airbag import airbag_for
from hotmesh.deploy.release import MANIFEST_NAME, Manifest
from hotmesh.deploy.report import UpgradeReport
from hotmesh.deploy.window import ProvisionalWindow

log = logging.getLogger("hotmesh.deploy")


@record
class _Changed:
    """What ``UpgradeJob.change`` did, for the bookkeeping after it."""

    old_version: str
    manifest: Manifest | None
    available: list[str]  # managed modules on disk
    removed: list[str]
    added: dict[str, str]  # dependents run again, with why
    loaded: list[str]
    stale: list[str]
    ran: list[str]  # upgrade actions


class UpgradeJob:
    """One run of ``upgrade_node`` (holds the deployment lock throughout)."""

    def __init__(
        self,
        deployment: _state.Deployment,
        provisional: float | None,
        force: bool,
        allow_stale: bool = False,
    ) -> None:
        self.dep = deployment
        self.provisional = provisional
        self.force = force
        self.allow_stale = allow_stale
        self.airbag = airbag_for(deployment)
        self.started = time.perf_counter()
        self.step = "actions"

    def fail(self, step: str, reason: str) -> UpgradeError:
        self.step = step
        log.warning("upgrade of %s failed at %s: %s", self.dep.node_name, step, reason)
        return UpgradeError(self.dep.node_name, step, reason)

    def run(self, actions: Iterable[Any], release: str | None) -> UpgradeReport:
        # Every step up to the migration and the actions runs in a machine-wide
        # turn: in a rollout all nodes upgrade at the same moment, and nodes of
        # one machine running their CPU-bound steps together each get preempted
        # while holding their GIL, which stalls their clients' requests.
        with machine_turn(state_root() / "turns", "upgrade"):
            done = self.change(actions, release)
        manifest, loaded, removed, added = done.manifest, done.loaded, done.removed, done.added
        self.step = "record"
        lingering: list[str] = []
        if self.provisional is None:
            for mod in removed:
                _delete(mod)
            lingering = [m for m in loaded if not _soft_purge(m)]
        self.dep.known_modules = set(done.available)
        if manifest is not None:
            self.dep.release = manifest.version
            self.dep.manifest_text = _manifest_text(self.dep)
        self.dep.running_dir = self.dep.resolved_dir()
        if self.provisional is not None:
            self.airbag.update_record(version_after=self.dep.version())
        report = UpgradeReport(
            node=self.dep.node_name,
            ok=True,
            old_version=done.old_version,
            new_version=self.dep.version(),
            loaded=list(loaded),
            added={m: added[m] for m in loaded if m in added},
            removed=list(removed),
            stale=done.stale,
            actions=done.ran,
            lingering=lingering,
            provisional=self.provisional if self.airbag.pending() is not None else None,
            seconds=round(time.perf_counter() - self.started, 6),
        )
        if report.changed or report.old_version != report.new_version:
            self.record(report)
        if self.provisional is not None and loaded:
            self.airbag.start()
        return report

    def change(self, actions: Iterable[Any], release: str | None) -> _Changed:
        """Every step from reading the release to the upgrade actions (not the bookkeeping)."""
        try:
            given = normalize(actions)
        except DeployError as exc:
            raise self.fail("actions", str(exc)) from None
        if self.provisional is not None:
            try:
                ProvisionalWindow.open(0.0, self.provisional)
            except ValueError as exc:
                raise self.fail("provisional", str(exc)) from None
        manifest = self.read_release()
        on_disk = manifest.version if manifest else None
        if release is not None and on_disk != release:
            raise self.fail(
                "release",
                f"this deploy brings {release} but the release on disk is {on_disk} "
                f"({self.dep.release_path}): ship the files to this node first",
            )
        if self.airbag.pending() is not None:
            record = self.airbag.pending() or {}
            raise self.fail(
                "provisional",
                f"the provisional upgrade to {record.get('version_after')} is not confirmed "
                "yet: confirm() it or let it revert first",
            )
        old_version = self.dep.version()
        todo = self.pending_actions(merged(given, release_actions(manifest)), manifest)
        self.step = "scan"
        to_load, new, removed, available = self.scan()
        self.step = "dependents"
        added = self.dependents(to_load, removed)
        to_load = sorted({*to_load, *added})
        self.step = "purge"
        self.purge_old(to_load)
        self.step = "load"
        loaded = self.switch(to_load, new, removed, manifest, old_version)
        self.step = "stale"
        stale = self.check_stale(loaded)
        self.step = "migrate"
        ran = self.after_switch(loaded, todo, manifest)
        return _Changed(old_version, manifest, available, removed, added, loaded, stale, ran)

    def read_release(self) -> Manifest | None:
        try:
            return self.dep.read_manifest()
        except DeployError as exc:
            raise self.fail("release", str(exc)) from None

    def scan(self) -> tuple[list[str], list[str], list[str], list[str]]:
        """Modules to load (modified + new), the new ones, the removed ones, all on disk."""
        try:
            loaded = set(code.loaded())
            available = code.available_modules()
            status = {mod: code.module_status(mod) for mod in loaded}
        except CodeError as exc:
            raise self.fail("scan", str(exc)) from None
        modified = {m for m, s in status.items() if s == "modified"}
        removed = sorted(m for m, s in status.items() if s == "removed")
        new = sorted(m for m in available if m not in loaded and m not in self.dep.known_modules)
        to_load = sorted((modified - set(removed)) | set(new))
        return to_load, new, removed, list(available)

    def dependents(self, to_load: list[str], removed: list[str]) -> dict[str, str]:
        """Loaded modules that bound objects of the changed ones: they run again too.

        Refuses (nothing changed) when one of them declares itself not
        re-runnable (``__hotmesh_rerun__ = False``): loading without it would
        leave it bound to the old code.
        """
        if not to_load and not removed:
            return {}
        added = code.dependents([*to_load, *removed])
        refusing = []
        for mod, why in added.items():
            current = code.current_version(mod)
            if current is not None and current.namespace.get(RERUN_FLAG) is False:
                refusing.append(f"{mod} ({why})")
        if refusing:
            raise self.fail(
                "dependents",
                "these modules must run again with the new code but declare "
                f"{RERUN_FLAG} = False: " + "; ".join(refusing) + "; ship them changed "
                "together with the modules they bind, or restart the node",
            )
        for mod, why in added.items():
            log.info("%s: %s runs again: %s", self.dep.node_name, mod, why)
        return added

    def check_stale(self, loaded: list[str]) -> list[str]:
        """What still holds objects of the versions just replaced (before any purge).

        A binding from a managed module (a name, or a subclass) fails the
        upgrade and switches the code back, unless ``allow_stale``.
        """
        managed = set(code.loaded())
        found: list[str] = []
        bad: list[str] = []
        for refs in code.stale_references_of(loaded).values():
            for ref in refs:
                if " (old " in ref.holder:
                    continue  # an old version holding its peers: gone with the purge
                found.append(str(ref))
                holder = ref.holder if ref.kind == "binding" else ""
                if ref.kind == "subclass" and " (old " not in ref.holder:
                    # "<module>.<qualname>" of a class of a current version
                    owners = [m for m in managed if ref.holder.startswith(m + ".")]
                    holder = max(owners, key=len, default="")
                if holder in managed:
                    bad.append(str(ref))
        if bad and not self.allow_stale:
            self.undo(loaded)
            raise self.fail(
                "stale",
                "managed code still binds the old version after the switch: "
                + "; ".join(bad[:20])
                + ("; …" if len(bad) > 20 else "")
                + "; the code switch was reverted (allow_stale=True keeps it)",
            )
        return found

    def purge_old(self, to_load: list[str]) -> None:
        busy = [m for m in to_load if not _soft_purge(m)]
        if busy:
            raise self.fail(
                "purge",
                "old code is still running in " + ", ".join(busy) + "; let it finish, or "
                "hotmesh.code.purge() it, then upgrade again",
            )

    def switch(
        self,
        to_load: list[str],
        new: list[str],
        removed: list[str],
        manifest: Manifest | None,
        old_version: str,
    ) -> list[str]:
        """Prepare every module, arm the airbag if provisional, then switch at once.

        Modules new in this release that others import are prepared with them
        (prepare_loading resolves such imports to the prepared versions), so
        nothing is loaded before the switch.
        """
        if not to_load:
            return []
        armed = False
        try:
            prepared = code.prepare_loading(to_load, force=self.force)
        except BaseException as exc:
            # A module body may end in anything, SystemExit included.
            self.abandon(new, armed)
            if isinstance(exc, XrefError):
                reason = "\n".join(str(p) for p in exc.problems) or str(exc)
                raise self.fail("xref", reason) from None
            raise self.fail("load", describe(exc)) from None
        if self.provisional is not None:
            self.arm(to_load, new, removed, manifest, old_version)
            armed = True
        try:
            versions = code.finish_loading(prepared)
        except BaseException as exc:
            self.abandon(new, armed)
            raise self.fail("load", describe(exc)) from None
        switched = sorted(versions)
        if self.provisional is not None:
            paths = {m: code.which(m) for m in new if m in switched}
            self.airbag.note_new_paths(paths)
        log.info("%s: loaded %s", self.dep.node_name, ", ".join(switched))
        return switched

    def abandon(self, new: list[str], armed: bool) -> None:
        """Undo a switch that did not happen: forget the airbag and new modules imported."""
        if armed:
            self.airbag.disarm()
        for mod in new:
            if code.is_loaded(mod):
                try:
                    code.delete(mod)
                    code.soft_purge(mod)
                except CodeError as exc:
                    log.warning("could not unload %s after a failed upgrade: %s", mod, exc)

    def arm(
        self,
        to_load: list[str],
        new: list[str],
        removed: list[str],
        manifest: Manifest | None,
        old_version: str,
    ) -> None:
        snapshot = {m: code.current_version(m) for m in [*to_load, *removed]}
        record = {
            "node": self.dep.node_name,
            "release_before": self.dep.release,
            "release_after": manifest.version if manifest else self.dep.release,
            "version_before": old_version,
            "version_after": f"{manifest.version if manifest else self.dep.release}+pending",
            "modules": to_load,
            "new_modules": new,
            "removed": removed,
            "layout": "symlink" if self.dep.is_symlink_layout() else "copy",
            "release_path": str(self.dep.release_path) if self.dep.release_path else None,
            "previous_dir": str(self.dep.running_dir) if self.dep.running_dir else None,
            "manifest_before": self.dep.manifest_text,
        }
        try:
            self.airbag.arm(record, self.provisional, snapshot=snapshot)  # type: ignore[arg-type]
        except (OSError, ValueError) as exc:
            raise self.fail("provisional", f"cannot arm the airbag: {exc}") from None

    def pending_actions(
        self, actions: list[UpgradeAction], manifest: Manifest | None
    ) -> list[UpgradeAction]:
        """The actions not yet run here; refuses (changing nothing) after a crash in one."""
        release = manifest.version if manifest else self.dep.release
        try:
            return pending(
                actions, ActionLog(self.dep.state_dir / "actions.json").records(), release
            )
        except (DeployError, ValueError) as exc:
            raise self.fail("actions", str(exc)) from None

    def after_switch(
        self, loaded: list[str], actions: list[UpgradeAction], manifest: Manifest | None
    ) -> list[str]:
        """Migrate services and run pending actions; on failure revert and raise."""
        problems = _services.migrate(loaded)
        if problems:
            self.undo(loaded)
            raise self.fail("migrate", "; ".join(problems) + "; the code switch was reverted")
        release = manifest.version if manifest else self.dep.release
        book = ActionLog(self.dep.state_dir / "actions.json")
        ran: list[str] = []
        self.step = "actions"
        for action in actions:
            raised = book.run(record_key(release, action.id), action.run)
            if raised is not None:
                self.undo(loaded)
                raise self.fail(
                    "actions",
                    f"upgrade action {action.id} raised {describe(raised)}"
                    + ("; the code switch was reverted" if loaded else ""),
                ) from raised
            self.dep.failed_at_start.pop(action.id, None)
            log.info("%s: upgrade action %s ran", self.dep.node_name, action.id)
            ran.append(action.id)
        return ran

    def undo(self, loaded: list[str]) -> None:
        """Switch ``loaded`` back to the code that ran before this upgrade."""
        self.airbag.disarm()
        if not loaded:
            return
        try:
            code.revert(loaded)
        except CodeError as exc:
            log.error("%s: could not revert %s: %s", self.dep.node_name, loaded, exc)
            return
        _services.migrate(loaded)

    def record(self, report: UpgradeReport) -> None:
        entry = {"at": time.time(), **report}
        append_line(self.dep.state_dir / "history.jsonl", json.dumps(entry, sort_keys=True))
        self.dep.upgraded_at = entry["at"]
        log.info("%s upgraded: %s", self.dep.node_name, report.summary())


def describe(exc: BaseException) -> str:
    """``CodeError`` messages as they are; anything else with its type (``SystemExit: 3``)."""
    if isinstance(exc, CodeError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def release_actions(manifest: Manifest | None) -> list[UpgradeAction]:
    """The upgrade actions ``manifest`` declares, in its order (none without a manifest)."""
    if manifest is None:
        return []
    return [
        UpgradeAction(a.id, _resolver(a.call), dict(a.settings))
        if a.call
        else UpgradeAction(a.id, settings=dict(a.settings))
        for a in manifest.actions
    ]


def _resolver(call: str) -> Callable[[], Any]:
    """A function that imports and runs ``"pkg.mod:function"`` when called."""

    def run() -> Any:
        module, _, attr = call.partition(":")
        return getattr(importlib.import_module(module), attr)()

    return run


def _manifest_text(dep: _state.Deployment) -> str | None:
    if dep.release_path is None:
        return None
    try:
        return (dep.release_path / MANIFEST_NAME).read_text(encoding="utf-8")
    except OSError:
        return None


def _soft_purge(mod: str) -> bool:
    try:
        return code.old_version(mod) is None or code.soft_purge(mod)
    except CodeError:
        return False


def _delete(mod: str) -> None:
    try:
        code.delete(mod)
    except CodeError as exc:
        log.warning("could not delete %s (gone from disk): %s", mod, exc)
