"""The deploy toolkit: upgrade this node, see every node's version, roll an
upgrade through the mesh, and make an upgrade provisional (the airbag).

The per-deploy snippet (``snippets/template.py``) is thin code over these.
Erlang's mapping: ``upgrade_node`` is ``release_handler:install_release`` for
one node, a provisional upgrade is an installed release that is not yet
permanent (``confirm`` is ``make_permanent``), ``node_versions`` is
``which_releases`` across the mesh.
"""

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
