# Deploy snippet: copy this file for each deploy, fill in the header, the
# release and the upgrade actions, and keep it with the ticket.
#
# Ticket:  SHOP-0000
# What:    <one line: what this deploy changes and why>
# Tried:   <where it was rehearsed: local cluster (LocalCluster / hotmesh demo)
#          on <date>, staging on <date>; what was checked>
# Plan:    upgrade_node() on the attached node, look at it, then
#          rolling_upgrade() one node at a time (or batch=...)
#
# Pasting this into `hotmesh attach NODE` only defines things: nothing is
# upgraded until you call a function. Non-interactive:
#     hotmesh run NODE snippets/<this file> --call rolling_upgrade
#
# The functions run on the node you are attached to; rolling_upgrade ships
# upgrade_node (and the actions it names) to every other node, so each node
# runs this deploy's actions exactly once (recorded in its state dir).

from hotmesh import deploy, settings

RELEASE = "v2"  # the `version` in the new release's hotmesh-release.toml


# -- Upgrade actions of this deploy ---------------------------------------
# Each runs once per node per release, after the new code is loaded; if one
# raises, that node's code switch is reverted and the rollout stops there.
# Name every action in upgrade_node() below with a stable id. A setting the
# new code reads is an action of its own, ("id", {"key": value}): set on the
# node live and on disk, and shown by dry_run=True. What code must do is a
# function of no arguments, ("id", fn): a dry run names it but cannot say what
# it will change. Actions a node restarted onto the new files must run too
# belong in the release's hotmesh-release.toml ([[actions]]): it runs them as
# it starts.

CART_LIMIT = {"cart.max_items": 50}  # example: a setting the new code reads


def rebuild_indexes():
    """Example action that runs code (add it to upgrade_node below to use it)."""
    import shop.indexes  # reach application code through its module

    shop.indexes.rebuild(limit=settings.get("cart.max_items"))


# -- The four functions ----------------------------------------------------


def upgrade_node(provisional=None, dry_run=False):
    """Upgrade the node this runs on; a report, or UpgradeError with the step.

    dry_run=True changes nothing: it returns what the upgrade would do here.
    """
    return deploy.upgrade_node(
        release=RELEASE,
        actions=[
            ("2026-11-24-raise-cart-limit", CART_LIMIT),
            # ("2026-11-24-rebuild-indexes", rebuild_indexes),
        ],
        provisional=provisional,
        dry_run=dry_run,
    )


def node_versions():
    """Every node's version, airbag, pending actions and drift (a table); Unreachable(reason)."""
    return deploy.node_versions()


def nodes_at(vsn, count=None):
    """Names of all (or `count`) nodes fully at `vsn` ("v1" or "v1+3fa9c1d2")."""
    return deploy.nodes_at(vsn, count)


def rolling_upgrade(nodes=None, batch=1, pause=0.0, check=None, dry_run=False):
    """Upgrade `nodes` (default: every node not fully on RELEASE), `batch` at a time.

    "Fully": a node restarted onto the new files before its turn runs RELEASE's
    code, and the manifest's actions as it starts, but not the actions given in
    upgrade_node above; it is upgraded too (those actions run).
    `check(nodes_just_upgraded)` runs after each batch; returning False or
    raising stops the rollout. Ctrl-C stops after the nodes in flight.
    dry_run=True changes nothing: each node says what its upgrade would do.
    """
    if nodes is None:
        nodes = deploy.nodes_not_at(RELEASE)
    return deploy.rolling_upgrade(
        nodes, upgrade=upgrade_node, batch=batch, pause=pause, check=check, dry_run=dry_run
    )
