"""The deploy snippet the deploy tests paste: the template plus test drivers, as a
console paste defines them. No I/O."""

from __future__ import annotations

from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[2] / "snippets" / "template.py"

# What a test sends to a node besides the template: shipped by source, like
# functions defined in a console session.
DRIVERS = '''

def run_rollout(vsn, batch=1):
    """rolling_upgrade(nodes_at(vsn)) on this node; its printed lines and outcome."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            rolling_upgrade(nodes_at(vsn), batch=batch)
        except Exception as exc:
            return {"ok": False, "out": out.getvalue(), "step": getattr(exc, "step", None),
                    "node": getattr(exc, "node", None), "reason": getattr(exc, "reason", None)}
    return {"ok": True, "out": out.getvalue()}


def library_rollout(vsn):
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        return deploy.rolling_upgrade(deploy.nodes_at(vsn), batch=4).totals().split(" in ")[0]


def count_action():
    from hotmesh._node import current_node

    path = current_node().state_dir / "count-action-runs"
    path.write_text(str(int(path.read_text()) + 1 if path.exists() else 1))


def upgrade_counting():
    return deploy.upgrade_node(actions=[("2026-11-24-count", count_action)])


def action_runs():
    from hotmesh._node import current_node

    path = current_node().state_dir / "count-action-runs"
    return int(path.read_text()) if path.exists() else 0
'''
