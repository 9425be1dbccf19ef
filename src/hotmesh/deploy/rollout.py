"""Rolling upgrades: the per-node results and their table, and a small runner
that takes a pure plan (``hotmesh.deploy.plans``) and calls the upgrade on each
node of each batch (mesh I/O)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from hotmesh._errors import RemoteError, UpgradeError
from hotmesh._rpc.fanout import Unreachable, fan_out_pool, reason_of, run_on, submit, this_node
from hotmesh._runtime import NodeLike
from hotmesh.deploy import plans
from hotmesh.deploy.dryrun import FleetPlan, UpgradePlan
from hotmesh.deploy.plans import Batch
from hotmesh.deploy.report import UpgradeReport
from hotmesh.deploy.upgrade import upgrade_node


def plan(nodes: Sequence[str], batch: int) -> list[Batch]:
    """Split ``nodes`` into batches of ``batch`` nodes, keeping their order
    (``plans.batches(batch)(nodes)``).

    ``batch=1`` is one node at a time; ``batch=len(nodes)`` all at once.

    Raises:
        ValueError: ``batch`` is not a positive integer, or a node is repeated.
    """
    return plans.batches(batch)(nodes)


def _planned(names: list[str], planner: plans.Plan) -> list[Batch]:
    """The plan's batches, checked: every node exactly once, nothing else.

    Raises:
        ValueError: the plan lost, added or repeated a node.
    """
    plans.checked(names)
    steps = planner(names)
    given = [n for step in steps for n in step.nodes]
    if sorted(given) != sorted(names):
        raise ValueError(
            f"the plan {getattr(planner, '__qualname__', planner)!r} must place every node "
            f"exactly once: got {given}, for {names}"
        )
    return steps


@dataclass
class NodeResult:
    """How one node's upgrade went (``report`` when ok, ``step``/``reason`` when not)."""

    node: str
    ok: bool
    seconds: float
    report: UpgradeReport | None = None
    step: str | None = None
    reason: str | None = None

    def line(self) -> str:
        """The progress line printed when the node finishes."""
        if self.ok:
            what = self.report.summary() if self.report is not None else "ok"
        else:
            what = f"FAILED at {self.step}: {_first_line(self.reason)}"
        return f"{self.node}  {what}  ({self.seconds:.2f} s)"


@dataclass
class Rollout:
    """The outcome of a rolling upgrade: per-node results, nodes not started, why it stopped."""

    results: list[NodeResult] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)
    stopped: str | None = None
    interrupted: bool = False
    seconds: float = 0.0
    down: dict[str, str] = field(default_factory=dict)
    """Peers down when the rollout began (``Node.lost_nodes``), not among its
    nodes: not upgraded, shown in the table so that nobody reads the fleet as done."""

    @property
    def ok(self) -> bool:
        """True when every node was upgraded and nothing stopped the rollout."""
        return not self.not_started and self.stopped is None and all(r.ok for r in self.results)

    @property
    def upgraded(self) -> list[str]:
        """Nodes whose upgrade succeeded, in the order they finished."""
        return [r.node for r in self.results if r.ok]

    @property
    def failed(self) -> list[NodeResult]:
        """Results of the nodes whose upgrade failed."""
        return [r for r in self.results if not r.ok]

    def table(self) -> str:
        """The final summary table: one row per node, then totals."""
        rows = [("node", "result", "version or reason", "time")]
        for r in self.results:
            if r.ok:
                detail = r.report.get("new_version", "") if r.report else ""
                rows.append((r.node, "ok", str(detail), f"{r.seconds:.2f} s"))
            else:
                rows.append(
                    (r.node, "FAILED", f"{r.step}: {_first_line(r.reason)}", f"{r.seconds:.2f} s")
                )
        rows += [(n, "skipped", "not started", "") for n in self.not_started]
        rows += [(n, "down", f"not in the rollout: {why}", "") for n, why in self.down.items()]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows
        ]
        return "\n".join([*lines, self.totals()])

    def totals(self) -> str:
        """The last line of the table: counts, time and why it stopped."""
        totals = (
            f"{len(self.upgraded)} upgraded, {len(self.failed)} failed, "
            f"{len(self.not_started)} not started in {self.seconds:.2f} s"
        )
        if self.interrupted:
            totals += " (interrupted)"
        elif self.stopped:
            totals += f" (stopped: {_first_line(self.stopped)})"
        if self.down:
            totals += f"; {len(self.down)} node(s) down, not in the rollout"
        return totals

    def __repr__(self) -> str:
        # One line: the runner has printed the table already.
        return f"<rollout: {self.totals()}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def _failure(exc: BaseException) -> tuple[str, str]:
    """(step, reason) of a failed upgrade, also when it failed on another node."""
    if isinstance(exc, RemoteError) and isinstance(exc.exc, UpgradeError):
        exc = exc.exc  # travelled with its fields
    if isinstance(exc, UpgradeError):
        return exc.step, exc.reason
    return "call", reason_of(exc)


def _result(node: str, future: Future[Any], started: float) -> NodeResult:
    seconds = time.monotonic() - started
    try:
        value = future.result()
    except Exception as exc:
        step, reason = _failure(exc)
        return NodeResult(node, False, seconds, step=step, reason=reason)
    report = UpgradeReport(value) if isinstance(value, dict) else None
    if report is not None and report.get("ok") is False:
        return NodeResult(node, False, seconds, report, "upgrade", "reported not ok")
    return NodeResult(node, True, seconds, report)


def rolling_upgrade(
    nodes: Iterable[str],
    *,
    upgrade: Callable[[], Any] | str = upgrade_node,
    batch: int = 1,
    plan: plans.Plan | None = None,
    pause: float = 0.0,
    check: Callable[[list[str]], Any] | None = None,
    stop_on_error: bool = True,
    timeout: float = 120.0,
    out: Callable[[str], Any] = print,
    dry_run: bool = False,
) -> Any:
    """Run ``upgrade`` on ``nodes`` batch after batch, printing a line per node.

    The batches are ``batch`` nodes each, in order, or what ``plan`` makes of
    the nodes: a pure function ``(nodes) -> list[Batch]`` such as
    ``plans.canary(1)`` (one node alone first) or ``plans.batches(5)``; it
    must place every node exactly once. Each batch's nodes are upgraded at
    the same time (this node in-process, the others through ``Node.call``,
    shipping ``upgrade`` when it was defined in a console); a progress line
    is printed as each finishes. After each
    batch ``check(upgraded_nodes)`` runs if given, on the batch's nodes that
    upgraded (a failure is raising or returning False; a pass prints a line:
    a check that confirms provisional nodes thereby says they are kept), then
    the runner sleeps ``pause`` seconds. The first
    failure stops the rollout (unless ``stop_on_error=False``) and the summary
    table is printed. Ctrl-C waits for the nodes in flight (never leaving one
    half-upgraded), then stops and prints the summary.

    With ``dry_run=True`` nothing changes: every node is asked at once what
    ``upgrade(dry_run=True)`` would do there, a line per node is printed, and
    ``{node: UpgradePlan | Unreachable}`` is returned (the snippet's
    ``upgrade_node`` must pass ``dry_run`` on, as the template's does).

    Returns:
        The ``Rollout`` (``table()`` is the summary printed; its repr is the
        totals line) when every node succeeded or the rollout was interrupted.

    Raises:
        UpgradeError: a node failed or a health check failed; ``.rollout``
            holds the results (the table was printed already).
        ValueError: bad ``batch``, both ``batch`` and ``plan``, a plan that
            loses or repeats a node, or repeated nodes (before anything runs).

    Example::

        rolling_upgrade(nodes_at("v1"), plan=plans.canary(1, then=5), check=healthy)
    """
    if plan is not None and batch != 1:
        raise ValueError("give rolling_upgrade a batch size or a plan, not both")
    node = this_node()
    names = plans.checked(nodes if isinstance(nodes, str) else list(nodes))
    planner = plan if plan is not None else plans.batches(batch)
    batches = _planned(names, planner)
    fn: Callable[..., Any] | str = (
        "hotmesh.deploy.upgrade_node" if upgrade is upgrade_node else upgrade
    )
    if dry_run:
        return _dry_run(names, batches, fn, node, timeout, out)
    rollout = Rollout()
    begun = time.monotonic()
    shape = f"of {batch}" if plan is None else f"({getattr(plan, '__qualname__', 'plan')})"
    out(f"rolling upgrade of {len(names)} node(s) in {len(batches)} batch(es) {shape}")
    rollout.down = {n: why for n, why in node.lost_nodes().items() if n not in names}
    if rollout.down:
        shown = ", ".join(f"{n} ({why})" for n, why in rollout.down.items())
        out(f"down, so not in this rollout: {shown}")
    widest = max((len(b.nodes) for b in batches), default=1)
    pool = fan_out_pool(max(1, min(32, widest)), "hotmesh-rollout")
    last: Batch | None = None
    try:
        for index, step in enumerate(batches):
            last = step
            stop = _run_batch(step, fn, node, pool, rollout, timeout, out)
            if stop is None and (failed := [r for r in rollout.failed if r.node in step.nodes]):
                stop = f"{failed[0].node} failed at {failed[0].step}" if stop_on_error else None
            # The health check asks about the nodes this batch upgraded: a node
            # that failed (with stop_on_error=False) is already reported as such.
            upgraded = [n for n in step.nodes if n in rollout.upgraded]
            if stop is None and check is not None and upgraded:
                stop = _run_check(check, upgraded)
                if stop is None:
                    out(f"check {_name_of(check)} passed after {', '.join(upgraded)}")
            if stop is not None:
                rollout.stopped = stop
                rollout.interrupted = stop == "interrupted"
                rollout.not_started += [n for b in batches[index + 1 :] for n in b.nodes]
                break
            if pause > 0 and index + 1 < len(batches):
                try:
                    time.sleep(pause)
                except KeyboardInterrupt:
                    rollout.stopped, rollout.interrupted = "interrupted", True
                    rollout.not_started += [n for b in batches[index + 1 :] for n in b.nodes]
                    break
    finally:
        pool.shutdown(wait=True)
    rollout.seconds = time.monotonic() - begun
    out(rollout.table())
    if rollout.interrupted:
        return rollout
    if rollout.failed or rollout.stopped:
        if rollout.failed:
            first = rollout.failed[0]
            error = UpgradeError(first.node, first.step or "upgrade", first.reason or "")
        else:
            checked = ", ".join(n for n in (last.nodes if last else ()) if n in rollout.upgraded)
            error = UpgradeError(checked, "check", rollout.stopped or "")
        error.rollout = rollout
        raise error
    return rollout


def _dry_run(
    names: list[str],
    batches: list[Batch],
    fn: Callable[..., Any] | str,
    node: NodeLike,
    timeout: float,
    out: Callable[[str], Any],
) -> FleetPlan:
    """Ask every node at once what ``fn(dry_run=True)`` would do there; nothing changes."""
    out(
        f"dry run of a rolling upgrade of {len(names)} node(s) in {len(batches)} batch(es): "
        "nothing changes"
    )
    outcome = run_on(names, fn, timeout=timeout, node=node, kwargs={"dry_run": True})
    plans_by_node = FleetPlan()
    for name in names:
        ok, value = outcome[name]
        if ok and isinstance(value, dict):
            plans_by_node[name] = UpgradePlan(value)
            out(f"{name}  {plans_by_node[name].summary()}")
        else:
            reason = reason_of(value) if not ok else f"answered {type(value).__name__}"
            plans_by_node[name] = Unreachable(reason)
            out(f"{name}  {plans_by_node[name]}")
    return plans_by_node


def _run_batch(
    step: Batch,
    fn: Callable[[], Any] | str,
    node: NodeLike,
    pool: ThreadPoolExecutor,
    rollout: Rollout,
    timeout: float,
    out: Callable[[str], Any],
) -> str | None:
    """Upgrade one batch; print each node's line as it finishes; "interrupted" on Ctrl-C.

    Ctrl-C may arrive anywhere in this thread: nodes not sent yet are not
    started, nodes in flight are always waited for (never half-upgraded).
    """
    started = time.monotonic()
    futures: dict[Future[Any], str] = {}
    interrupted = False
    try:
        for name in step.nodes:
            futures[submit(pool, name, fn, (), node=node, timeout=timeout)] = name
    except KeyboardInterrupt:
        interrupted = True
    sent = set(futures.values())
    rollout.not_started += [n for n in step.nodes if n not in sent]
    while futures:
        try:
            if interrupted:
                out(f"interrupted: waiting for {len(futures)} node(s) in flight ...")
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for future in done:
                if future in futures:
                    result = _result(futures[future], future, started)
                    rollout.results.append(result)
                    del futures[future]
                    out(result.line())
        except KeyboardInterrupt:
            interrupted = True
    return "interrupted" if interrupted else None


def _name_of(check: Callable[..., Any]) -> str:
    """How a progress line names a health check: its function's name, else its type's."""
    return getattr(check, "__name__", None) or type(check).__name__


def _run_check(check: Callable[[list[str]], Any], nodes: list[str]) -> str | None:
    try:
        passed = check(nodes)
    except KeyboardInterrupt:
        return "interrupted"
    except Exception as exc:
        return f"health check after {', '.join(nodes)} raised {type(exc).__name__}: {exc}"
    return f"health check after {', '.join(nodes)} returned False" if passed is False else None
