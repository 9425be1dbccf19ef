"""Dry runs: what ``upgrade_node`` would do on this node, worked out without
changing anything (no load, no purge, no action, no record). Reads the
release and module files and the code server's state."""

from __future__ import annotations

import ast
import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hotmesh import code, service, settings
from hotmesh._errors import CodeError, DeployError, UpgradeError
from hotmesh.code.managed_roots import locate
from hotmesh.code.scan import find_offenders
from hotmesh.code.versions import source_hash
from hotmesh.deploy import _state
from hotmesh.deploy._job import UpgradeJob, release_actions
from hotmesh.deploy.actions import UpgradeAction, merged, normalize

_FIELDS = (
    "node",
    "ok",
    "step",
    "reason",
    "old_version",
    "release",
    "modules",
    "dependents",
    "xref",
    "hooks",
    "actions",
    "settings",
    "opaque",
    "purge",
    "running",
)


class UpgradePlan(dict[str, Any]):
    """What ``upgrade_node(dry_run=True)`` found: what the upgrade would do here.

    A dict (it travels back from other nodes) with attributes: ``node``,
    ``ok`` (the upgrade would go through), ``step``/``reason`` (where and why
    it would fail), ``old_version``, ``release`` (on disk), ``modules``
    (``{"module", "change", "old_hash", "new_hash", "diff"}`` each: modified,
    new or removed, with the unified diff), ``dependents`` (loaded modules
    that bound objects of those and would run again, with why), ``xref``
    (dangling references the
    sanity check finds), ``hooks`` (``__upgrade__`` hooks and services'
    ``code_change`` that would run), ``actions`` (upgrade action ids that
    would run), ``settings`` (what their declared settings would change on
    this node: ``{"action", "key", "old", "new", "was_set"}`` each), ``opaque``
    (actions that call a function, whose effects no dry run can show),
    ``purge`` (old versions the load must drop first, and whether
    old code still runs there) and ``running`` (threads and asyncio tasks now
    in code that would become old: ``{module: [descriptions]}``).
    """

    def __getattr__(self, name: str) -> Any:
        if name in _FIELDS:
            return self.get(name)
        raise AttributeError(name)

    def summary(self) -> str:
        """One line: what would change, or where it would fail."""
        if not self.get("ok"):
            return f"would FAIL at {self.get('step')}: {_first_line(self.get('reason'))}"
        mods = self.get("modules") or []
        parts = [f"would load {len(mods)} module{'s' if len(mods) != 1 else ''}"]
        if self.get("dependents"):
            parts.append(f"re-run {len(self['dependents'])} dependent(s)")
        if self.get("actions"):
            parts.append("run " + ", ".join(self["actions"]))
        if self.get("settings"):
            parts.append("set " + ", ".join(c["key"] for c in self["settings"]))
        if self.get("hooks"):
            parts.append(f"{len(self['hooks'])} hook(s)")
        if self.get("running"):
            parts.append("old code left running in " + ", ".join(sorted(self["running"])))
        return ", ".join(parts)

    def __repr__(self) -> str:
        lines = [f"<dry run on {self.get('node')} ({self.get('old_version')}): {self.summary()}"]
        for mod in self.get("modules") or []:
            lines.append(
                f"  {mod['change']:<8} {mod['module']}  {mod['old_hash'] or '-'} -> "
                f"{mod['new_hash'] or '-'}"
            )
        for dependent in self.get("dependents") or []:
            lines.append(f"  re-run   {dependent}")
        for problem in self.get("xref") or []:
            lines.append(f"  xref     {problem}")
        for hook in self.get("hooks") or []:
            lines.append(f"  hook     {hook}")
        for name in self.get("actions") or []:
            opaque = (
                " (calls a function: effects not shown)"
                if name in (self.get("opaque") or ())
                else ""
            )
            lines.append(f"  action   {name}{opaque}")
        for change in self.get("settings") or []:
            old = repr(change["old"]) if change["was_set"] else "<unset>"
            lines.append(
                f"  setting  {change['key']}: {old} -> {change['new']!r} (by {change['action']})"
            )
        for mod, threads in sorted((self.get("running") or {}).items()):
            lines.append(f"  running  {mod}: {', '.join(threads)}")
        return "\n".join(lines) + ">"

    def diff(self) -> str:
        """Every module's unified diff, one after the other."""
        return "".join(m["diff"] for m in self.get("modules") or [])

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


class FleetPlan(dict[str, Any]):
    """``rolling_upgrade(..., dry_run=True)``: ``{node: UpgradePlan | Unreachable}``.

    Its repr is one line (the per-node lines were printed already); print a
    node's plan for its detail, ``.diff()`` for every node's diffs.
    """

    @property
    def failing(self) -> list[str]:
        """Nodes whose upgrade would fail, or that did not answer."""
        return [n for n, p in self.items() if not (isinstance(p, UpgradePlan) and p.ok)]

    def diff(self) -> str:
        """Each node's diff, under its name."""
        return "".join(
            f"== {name}\n{plan.diff()}"
            for name, plan in self.items()
            if isinstance(plan, UpgradePlan)
        )

    def __repr__(self) -> str:
        failing = len(self.failing)
        return (
            f"<dry run of {len(self)} node(s): {len(self) - failing} would upgrade, "
            f"{failing} would not>"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def plan_upgrade(
    *, actions: Iterable[Any] = (), force: bool = False, release: str | None = None
) -> UpgradePlan:
    """What ``upgrade_node(actions=..., force=..., release=...)`` would do; changes nothing."""
    dep = _state.current()
    with dep.lock:
        job = _Dry(dep, None, force)
        plan = UpgradePlan(node=dep.node_name, ok=True, step=None, reason=None)
        plan["old_version"] = dep.version()
        try:
            _plan(job, dep, actions, release, force, plan)
        except UpgradeError as exc:
            plan.update(ok=False, step=exc.step, reason=exc.reason)
        return plan


class _Dry(UpgradeJob):
    """The upgrade's own checks, run for a plan: a failure is reported, not logged."""

    def fail(self, step: str, reason: str) -> UpgradeError:
        self.step = step
        return UpgradeError(self.dep.node_name, step, reason)


def _plan(
    job: UpgradeJob,
    dep: _state.Deployment,
    actions: Iterable[Any],
    release: str | None,
    force: bool,
    plan: UpgradePlan,
) -> None:
    try:
        given = normalize(actions)
    except DeployError as exc:
        raise job.fail("actions", str(exc)) from None
    manifest = job.read_release()
    on_disk = manifest.version if manifest else None
    plan["release"] = on_disk
    if release is not None and on_disk != release:
        raise job.fail(
            "release", f"this deploy brings {release} but the release on disk is {on_disk}"
        )
    record = job.airbag.pending()
    if record is not None:
        raise job.fail(
            "provisional",
            f"the provisional upgrade to {record.get('version_after')} is not confirmed yet",
        )
    todo = job.pending_actions(merged(given, release_actions(manifest)), manifest)
    plan["actions"] = [a.id for a in todo]
    plan["settings"] = _settings_changes(todo)
    plan["opaque"] = [a.id for a in todo if a.has_call]
    to_load, new, removed, _available = job.scan()
    plan["modules"] = [_change(m, "new" if m in new else "modified") for m in to_load]
    plan["modules"] += [_change(m, "removed") for m in removed]
    added = job.dependents(to_load, removed)
    plan["dependents"] = [f"{mod} ({why})" for mod, why in sorted(added.items())]
    to_load = sorted({*to_load, *added})
    plan["purge"] = _purge_needed(to_load)
    plan["hooks"] = _hooks(to_load)
    plan["running"] = _running(to_load)
    try:
        problems = [] if force or not to_load else code.xref(to_load)
    except CodeError as exc:
        raise job.fail("xref", str(exc)) from None
    plan["xref"] = [str(p) for p in problems]
    busy = [m for m, info in plan["purge"].items() if info["running"]]
    if busy:
        raise job.fail("purge", "old code is still running in " + ", ".join(busy))
    if problems:
        raise job.fail("xref", "\n".join(plan["xref"]))


def _settings_changes(actions: list[UpgradeAction]) -> list[dict[str, Any]]:
    """What the declared settings of ``actions`` would change here, in the order they run."""
    current = settings.snapshot()
    changes = []
    for action in actions:
        changes += action.settings_changes(current)
        current.update(action.settings)
    return changes


def _change(mod: str, change: str) -> dict[str, Any]:
    """One module's change: hashes and the unified diff of current -> on disk."""
    current = code.current_version(mod)
    old_text = current.source if current is not None and current.source is not None else ""
    path = _source_path(mod) if change != "removed" else None
    new_text = path.read_text(encoding="utf-8") if path is not None else ""
    label = str(path) if path is not None else (current.path if current else mod) or mod
    diff = "".join(
        difflib.unified_diff(
            old_text.splitlines(keepends=True),
            new_text.splitlines(keepends=True),
            fromfile=f"{label} (loaded)",
            tofile=f"{label} (on disk)",
        )
    )
    return {
        "module": mod,
        "change": change,
        "old_hash": current.hash if current is not None else None,
        "new_hash": source_hash(new_text) if path is not None else None,
        "diff": diff,
    }


def _source_path(mod: str) -> Path | None:
    """The file the next load of ``mod`` reads (found without importing its package)."""
    current = code.current_version(mod)
    if current is not None and current.path:
        return Path(current.path)
    try:
        spec = locate(mod)
    except (ImportError, ValueError):
        return None
    origin = getattr(spec, "origin", None)
    return Path(origin) if origin and origin.endswith(".py") else None


def _purge_needed(mods: list[str]) -> dict[str, dict[str, Any]]:
    """Modules whose old version the load must drop first, and the threads and tasks in it."""
    result: dict[str, dict[str, Any]] = {}
    for mod in mods:
        old = code.old_version(mod)
        if old is not None:
            result[mod] = {"running": [o.description for o in find_offenders(old.namespace)]}
    return result


def _hooks(mods: list[str]) -> list[str]:
    """``__upgrade__`` hooks of the new sources, and services whose code_change would run."""
    hooks = []
    for mod in mods:
        path = _source_path(mod)
        known = path is not None and code.current_version(mod) is not None
        if known and path is not None and "__upgrade__" in _defined(path):
            hooks.append(f"{mod}.__upgrade__ (module hook)")
    wanted = set(mods)
    for name in service.services():
        try:
            status = service.service_status(name)
        except Exception:
            continue
        if status.module in wanted and status.status in ("running", "suspended"):
            hooks.append(f"service {name}: {status.module}.code_change")
    return hooks


def _defined(path: Path) -> set[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return set()
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }


def _running(mods: list[str]) -> dict[str, list[str]]:
    """Threads and asyncio tasks now in the current code of ``mods`` (it would become old)."""
    found: dict[str, list[str]] = {}
    for mod in mods:
        current = code.current_version(mod)
        if current is None:
            continue
        offenders = find_offenders(current.namespace)
        if offenders:
            found[mod] = [o.description for o in offenders]
    return found


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""
