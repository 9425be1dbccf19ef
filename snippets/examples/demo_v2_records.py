# Deploy snippet: demo release v2, a state-format change, provisional.
#
# Ticket:  DEMO-20
# What:    demokv v2 keeps richer records per counter and per connection
#          (code_change migrates the state in place, between two requests) and
#          answers "v2 ok count=N conn=C". v2 also caps the number of counters
#          at the setting demo.max_counters (default 1000): the release's upgrade
#          action (in its hotmesh-release.toml, so a node restarted onto the v2
#          files runs it as it starts) raises it to 100000 on every node, live
#          and on disk; dry_run=True shows it.
#          Provisional: each node switches back to v1 on its own (code and
#          state, through v2's code_change(("down", vsn))) unless confirmed
#          within 120 s or if its health check fails; confirm_when_healthy()
#          confirms a node once it answers in v2 with its counters migrated.
# Tried:   tests/cluster/test_demo_snippets.py (3 demo nodes, live clients).
# Plan:    upgrade_node() on the attached node, look at it, then
#          rolling_upgrade(): one node at a time, confirmed after its check.
#
#     hotmesh run demo1 snippets/examples/demo_v2_records.py --call rolling_upgrade

from hotmesh import deploy
from hotmesh.service import service_call, service_status

RELEASE = "v2"
PROVISIONAL = 120.0  # seconds to confirm in


# -- Upgrade actions: v2's own (hotmesh-release.toml) run once per node, after
# the code switch; none is added here.


# -- Health: the airbag runs it during the window; the rollout before confirming


def demo_service_healthy():
    """This node's demo service runs v2 code, migrated, and has not crashed."""
    status = service_status("demo")
    migration = status.last_migration
    return status.status == "running" and not status.pinned and bool(migration and migration.ok)


def confirm_when_healthy(nodes):
    """Check `nodes` answer in the v2 format, then confirm them (persisted on disk)."""
    for name in nodes:
        reply = service_call("demo", (0, "0 PING"), node=name)
        if not reply.startswith("0 v2 ok"):
            raise AssertionError(f"{name}: answered {reply!r}, not the v2 format")
    deploy.confirm(list(nodes))
    return True


# -- The four functions ----------------------------------------------------


def upgrade_node(provisional=PROVISIONAL, dry_run=False):
    """Upgrade the node this runs on, provisionally by default (dry_run: only say what)."""
    if not dry_run:
        deploy.register_health_check(demo_service_healthy, name="demo-v2")
    return deploy.upgrade_node(
        release=RELEASE,
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
    """Upgrade `nodes` (default: every node not fully on v2), confirming each batch."""
    if nodes is None:
        nodes = deploy.nodes_not_at(RELEASE)
    return deploy.rolling_upgrade(
        nodes,
        upgrade=upgrade_node,
        batch=batch,
        pause=pause,
        check=check or confirm_when_healthy,
        dry_run=dry_run,
    )


# What it prints (3 demo nodes, clients connected; from the rehearsal test;
# the long progress lines are wrapped here):
#
#   >>> rolling_upgrade()
#   rolling upgrade of 3 node(s) in 3 batch(es) of 1
#   demo1@vm  ok, v1+30ecaa48 -> v2+f3c0d7b5, 2 modules loaded, 1 action run,
#             provisional for 120 s: confirm(['demo1@vm']) to keep  (0.02 s)
#   check confirm_when_healthy passed after demo1@vm
#   demo2@vm  ok, v1+30ecaa48 -> v2+f3c0d7b5, 2 modules loaded, 1 action run,
#             provisional for 120 s: confirm(['demo2@vm']) to keep  (0.03 s)
#   check confirm_when_healthy passed after demo2@vm
#   demo3@vm  ok, v1+30ecaa48 -> v2+f3c0d7b5, 2 modules loaded, 1 action run,
#             provisional for 120 s: confirm(['demo3@vm']) to keep  (0.03 s)
#   check confirm_when_healthy passed after demo3@vm
#   node      result  version or reason  time
#   demo1@vm  ok      v2+f3c0d7b5        0.02 s
#   demo2@vm  ok      v2+f3c0d7b5        0.03 s
#   demo3@vm  ok      v2+f3c0d7b5        0.03 s
#   3 upgraded, 0 failed, 0 not started in 0.09 s
#   >>> call("demo2@vm", "hotmesh.settings.get", "demo.max_counters")
#   100000
#
# (Each line says "confirm([...]) to keep": confirm_when_healthy, the rollout's
# check, confirmed every node right after its line, as the "check ... passed"
# line under it says; each node's attached consoles
# saw "[airbag: ... confirmed v2+f3c0d7b5 (kept across restarts)]".) The clients' replies
# switched from "v1 ok 12" to "v2 ok count=13 conn=4" with no connection closed.
