# Deploy snippet: demo release v1.1, a plain bug fix.
#
# Ticket:  DEMO-11
# What:    GET of a key that was never incremented crashed the demo service
#          (KeyError in demokv.server.handle_call): its supervisor restarted it
#          from init, and every counter on that node was lost. v1.1 answers 0.
#          Same state format: no code_change, no upgrade action.
# Tried:   tests/cluster/test_demo_snippets.py (3 demo nodes, live clients).
# Plan:    upgrade_node() on the attached node, get_unknown_key_answers([node()]),
#          then rolling_upgrade(): one node at a time, the check after each one.
#
# Run it on the demo (hotmesh demo --ship v1.1), attached to demo1:
#     hotmesh run demo1 snippets/examples/demo_v1_1_fix_get.py --call rolling_upgrade

from hotmesh import deploy
from hotmesh.service import service_call

RELEASE = "v1.1"  # the `version` in the release's hotmesh-release.toml


def get_unknown_key_answers(nodes):
    """The fix is live on `nodes`: GET of a key nobody incremented answers 0.

    On v1 this request crashed the service; a check that passes also shows the
    service kept its counters (it did not restart).
    """
    for name in nodes:
        reply = service_call("demo", (0, "0 GET never-incremented"), node=name)
        if reply != "0 v1 ok 0":
            raise AssertionError(f"{name}: GET of an unknown key answered {reply!r}")
    return True


def upgrade_node(provisional=None, dry_run=False):
    """Upgrade the node this runs on; a report, or UpgradeError with the step."""
    return deploy.upgrade_node(release=RELEASE, provisional=provisional, dry_run=dry_run)


def node_versions():
    """Every node's version, airbag, pending actions and drift (a table); Unreachable(reason)."""
    return deploy.node_versions()


def nodes_at(vsn, count=None):
    """Names of all (or `count`) nodes fully at `vsn` ("v1" or "v1+3fa9c1d2")."""
    return deploy.nodes_at(vsn, count)


def rolling_upgrade(nodes=None, batch=1, pause=0.0, check=None, dry_run=False):
    """Upgrade `nodes` (default: every node still on v1), checking each batch."""
    if nodes is None:
        nodes = nodes_at("v1")  # not nodes_not_at: a node already on v2 stays there
    return deploy.rolling_upgrade(
        nodes,
        upgrade=upgrade_node,
        batch=batch,
        pause=pause,
        check=check or get_unknown_key_answers,
        dry_run=dry_run,
    )


# What it prints (3 demo nodes, clients connected; from the rehearsal test):
#
#   >>> node_versions()     # v1.1 on every disk, not loaded yet: drift
#   node      version      airbag     pending actions  drift                    notes
#   demo1@vm  v1+30ecaa48  confirmed  -                demokv, demokv.server
#   demo2@vm  v1+30ecaa48  confirmed  -                demokv, demokv.server
#   demo3@vm  v1+30ecaa48  confirmed  -                demokv, demokv.server
#   >>> rolling_upgrade()
#   rolling upgrade of 3 node(s) in 3 batch(es) of 1
#   demo1@vm  ok, v1+30ecaa48 -> v1.1+742d0f76, 2 modules loaded  (0.02 s)
#   check get_unknown_key_answers passed after demo1@vm
#   demo2@vm  ok, v1+30ecaa48 -> v1.1+742d0f76, 2 modules loaded  (0.02 s)
#   check get_unknown_key_answers passed after demo2@vm
#   demo3@vm  ok, v1+30ecaa48 -> v1.1+742d0f76, 2 modules loaded  (0.01 s)
#   check get_unknown_key_answers passed after demo3@vm
#   node      result  version or reason  time
#   demo1@vm  ok      v1.1+742d0f76      0.02 s
#   demo2@vm  ok      v1.1+742d0f76      0.02 s
#   demo3@vm  ok      v1.1+742d0f76      0.01 s
#   3 upgraded, 0 failed, 0 not started in 0.05 s
#   >>> nodes_at("v1"), nodes_at("v1.1")
#   ([], ['demo1@vm', 'demo2@vm', 'demo3@vm'])
#
# The clients saw every reply, in order, with their counters intact.
