"""``upgrade_node``: bring this node's code up to what is on disk, in Erlang's
release-handler order (purge, check, load, migrate, actions, purge, record),
or with ``dry_run`` say what that would do. The steps are ``_job``'s."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal, overload

from hotmesh._errors import UpgradeError
from hotmesh._gil import short_gil_slices
from hotmesh.deploy import _state
from hotmesh.deploy._job import UpgradeJob, describe
from hotmesh.deploy.report import UpgradeReport

if TYPE_CHECKING:
    from hotmesh.deploy.dryrun import UpgradePlan


@overload
def upgrade_node(
    *,
    actions: Iterable[Any] = (),
    provisional: float | None = None,
    force: bool = False,
    release: str | None = None,
    allow_stale: bool = False,
    dry_run: Literal[False] = False,
) -> UpgradeReport: ...


@overload
def upgrade_node(
    *,
    actions: Iterable[Any] = (),
    provisional: float | None = None,
    force: bool = False,
    release: str | None = None,
    allow_stale: bool = False,
    dry_run: Literal[True],
) -> UpgradePlan: ...


@overload
def upgrade_node(
    *,
    actions: Iterable[Any] = (),
    provisional: float | None = None,
    force: bool = False,
    release: str | None = None,
    allow_stale: bool = False,
    dry_run: bool,
) -> UpgradeReport | UpgradePlan: ...


def upgrade_node(
    *,
    actions: Iterable[Any] = (),
    provisional: float | None = None,
    force: bool = False,
    release: str | None = None,
    allow_stale: bool = False,
    dry_run: bool = False,
) -> UpgradeReport | UpgradePlan:
    """Upgrade this node to the code on its disk; a second call is a harmless ``ok``.

    Steps, each named in an ``UpgradeError``: ``release`` (read the manifest),
    ``provisional`` (an earlier provisional upgrade is still unconfirmed),
    ``scan`` (modified, new and removed managed modules), ``dependents``
    (the loaded modules whose bodies bound objects of those, re-run in the
    same batch; refused when one declares ``__hotmesh_rerun__ = False``),
    ``purge`` (free the old slots: soft purge only), ``xref`` (the sanity
    check run while preparing, skipped with ``force``), ``load`` (prepare
    every module, then switch all at once), ``stale`` (managed code still
    bound to an old version after the switch: switched back unless
    ``allow_stale``), ``migrate`` (running services change code now), ``actions`` (this
    release's upgrade actions not yet run on this node), then a soft purge that
    reports what still runs old code, and the new version is recorded.

    A failure before the switch changes nothing. A failure after it (a
    service migration or an upgrade action) switches the code back with
    ``hotmesh.code.revert`` before raising, so the node runs what it ran
    before; actions that completed stay recorded (they are not undone).

    With ``provisional=seconds`` the previous code stays loaded and the node
    switches back on its own unless ``confirm()`` comes within the window or a
    registered health check fails; a restart before the confirmation comes
    back on the previous release.

    Args:
        actions: upgrade actions of this deploy: ``(id, fn)`` pairs,
            ``(id, {key: value})`` pairs (settings to set), ``UpgradeAction``s
            or functions decorated with ``@upgrade_action(id)``; the release's
            own ``[[actions]]`` run after them.
        provisional: airbag window in seconds, or None for a permanent upgrade.
        force: load even if the sanity check finds dangling references.
        release: the release this deploy brings; when the manifest on disk
            names another one (files not shipped here yet), fail at
            ``release`` before anything changes.
        allow_stale: keep the new code even if a managed module still binds
            an object of an old version (listed in ``report.stale``).
        dry_run: change nothing; return the ``UpgradePlan`` of what the
            upgrade would do here (modules with hashes and diffs, xref
            result, hooks, actions and the settings they declare, old code
            still running) and, when it
            would fail, the step and reason (never raises for that).

    Returns:
        An ``UpgradeReport`` (``report.ok`` is True), or with ``dry_run`` an
        ``UpgradePlan``.

    Raises:
        UpgradeError: ``.step`` and ``.reason`` say what failed.

    Example::

        >>> hotmesh.deploy.upgrade_node()
        <upgrade of app1@web1: ok, v1+1c2d3e4f -> v2+9a8b7c6d, 2 modules loaded, ...>
    """
    if dry_run:
        # Imported here: an upgrade runs while the node serves clients, and the
        # dry run's module (with difflib) costs a first upgrade ~5 ms of CPU.
        from hotmesh.deploy.dryrun import plan_upgrade

        return plan_upgrade(actions=actions, force=force, release=release)
    deployment = _state.current()
    # The node goes on serving clients meanwhile: short GIL slices keep their
    # hand-offs between threads quick.
    with deployment.lock, short_gil_slices():
        job = UpgradeJob(deployment, provisional, force, allow_stale)
        try:
            return job.run(actions, release)
        except UpgradeError:
            raise
        except BaseException as exc:
            # Anything else (SystemExit, an unexpected error) still comes out
            # as an UpgradeError naming the step it happened in.
            reason = describe(exc)
            if job.step == "record":
                reason += (
                    "; the new code is running and the upgrade actions ran (both stay): "
                    "only the bookkeeping after them failed"
                )
            raise job.fail(job.step, reason) from exc
