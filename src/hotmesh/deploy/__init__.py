"""The deploy toolkit: upgrade this node, see every node's version, roll an
upgrade through the mesh, and make an upgrade provisional (the airbag).

The per-deploy snippet (``snippets/template.py``) is thin code over these.
Erlang's mapping: ``upgrade_node`` is ``release_handler:install_release`` for
one node, a provisional upgrade is an installed release that is not yet
permanent (``confirm`` is ``make_permanent``), ``node_versions`` is
``which_releases`` across the mesh.

The names below are imported the first time they are used (PEP 562
``__getattr__``, as ``hotmesh`` does): a node starts the deploy layer through
``hotmesh.deploy._startup`` and loads the rollout, dry-run and fleet modules
only when something asks for them.
"""

import typing as _typing

from hotmesh._lazy import lazy_names as _lazy_names

if _typing.TYPE_CHECKING:
    from hotmesh._rpc.fanout import Unreachable
    from hotmesh.deploy import plans
    from hotmesh.deploy.actions import (
        UpgradeAction,
        mark_action_done,
        reset_action,
        upgrade_action,
    )
    from hotmesh.deploy.airbag import (
        confirm,
        register_health_check,
        unregister_health_check,
    )
    from hotmesh.deploy.dryrun import FleetPlan, UpgradePlan
    from hotmesh.deploy.fleet import NodeVersion, Versions
    from hotmesh.deploy.plans import Batch
    from hotmesh.deploy.release import MANIFEST_NAME, Manifest, read_manifest
    from hotmesh.deploy.report import UpgradeReport
    from hotmesh.deploy.rollout import NodeResult, Rollout, plan, rolling_upgrade
    from hotmesh.deploy.upgrade import upgrade_node
    from hotmesh.deploy.versions import (
        node_status,
        node_version,
        node_versions,
        nodes_at,
        nodes_not_at,
    )

_LAZY: dict[str, tuple[str, str | None]] = {
    "MANIFEST_NAME": ("hotmesh.deploy.release", "MANIFEST_NAME"),
    "Batch": ("hotmesh.deploy.plans", "Batch"),
    "FleetPlan": ("hotmesh.deploy.dryrun", "FleetPlan"),
    "Manifest": ("hotmesh.deploy.release", "Manifest"),
    "NodeResult": ("hotmesh.deploy.rollout", "NodeResult"),
    "NodeVersion": ("hotmesh.deploy.fleet", "NodeVersion"),
    "Rollout": ("hotmesh.deploy.rollout", "Rollout"),
    "Unreachable": ("hotmesh._rpc.fanout", "Unreachable"),
    "UpgradeAction": ("hotmesh.deploy.actions", "UpgradeAction"),
    "UpgradePlan": ("hotmesh.deploy.dryrun", "UpgradePlan"),
    "UpgradeReport": ("hotmesh.deploy.report", "UpgradeReport"),
    "Versions": ("hotmesh.deploy.fleet", "Versions"),
    "confirm": ("hotmesh.deploy.airbag", "confirm"),
    "mark_action_done": ("hotmesh.deploy.actions", "mark_action_done"),
    "node_status": ("hotmesh.deploy.versions", "node_status"),
    "node_version": ("hotmesh.deploy.versions", "node_version"),
    "node_versions": ("hotmesh.deploy.versions", "node_versions"),
    "nodes_at": ("hotmesh.deploy.versions", "nodes_at"),
    "nodes_not_at": ("hotmesh.deploy.versions", "nodes_not_at"),
    "plan": ("hotmesh.deploy.rollout", "plan"),
    "plans": ("hotmesh.deploy.plans", None),
    "read_manifest": ("hotmesh.deploy.release", "read_manifest"),
    "register_health_check": ("hotmesh.deploy.airbag", "register_health_check"),
    "reset_action": ("hotmesh.deploy.actions", "reset_action"),
    "rolling_upgrade": ("hotmesh.deploy.rollout", "rolling_upgrade"),
    "unregister_health_check": ("hotmesh.deploy.airbag", "unregister_health_check"),
    "upgrade_action": ("hotmesh.deploy.actions", "upgrade_action"),
    "upgrade_node": ("hotmesh.deploy.upgrade", "upgrade_node"),
}
"""Public names imported on first use: name -> (module, attribute or None for the module)."""


__getattr__, __dir__ = _lazy_names("hotmesh.deploy", _LAZY, globals())


__all__ = [
    "MANIFEST_NAME",
    "Batch",
    "FleetPlan",
    "Manifest",
    "NodeResult",
    "NodeVersion",
    "Rollout",
    "Unreachable",
    "UpgradeAction",
    "UpgradePlan",
    "UpgradeReport",
    "Versions",
    "confirm",
    "mark_action_done",
    "node_status",
    "node_version",
    "node_versions",
    "nodes_at",
    "nodes_not_at",
    "plan",
    "plans",
    "read_manifest",
    "register_health_check",
    "reset_action",
    "rolling_upgrade",
    "unregister_health_check",
    "upgrade_action",
    "upgrade_node",
]
