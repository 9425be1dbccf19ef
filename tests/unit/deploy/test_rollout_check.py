"""rolling_upgrade with stop_on_error=False: a failed node is reported, the health
check is asked only about the nodes that upgraded, and the rollout goes on."""

from __future__ import annotations

from typing import Any

import pytest

from hotmesh import NodeDown, UpgradeError
from hotmesh.deploy import rollout as rollout_module


class _Mesh:
    """A driver node whose peers upgrade fine, except ``dead``, which is down."""

    name = "driver@h"

    def __init__(self, dead: str) -> None:
        self.dead = dead
        self.called: list[str] = []

    def nodes(self) -> list[str]:
        return []

    def lost_nodes(self) -> dict[str, str]:
        return {}

    def call(self, target: str, fn: Any, *args: Any, timeout: float) -> dict[str, Any]:
        self.called.append(target)
        if target == self.dead:
            raise NodeDown(target, f"node {target} is not connected")
        return {"node": target, "ok": True, "old_version": "v1", "new_version": "v2"}


def test_check_after_a_failed_node_is_not_asked_about_it_without_stop_on_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mesh = _Mesh(dead="b@h")
    monkeypatch.setattr(rollout_module, "this_node", lambda: mesh)
    checked: list[list[str]] = []

    def check(batch: list[str]) -> bool:
        checked.append(batch)
        if mesh.dead in batch:
            raise NodeDown(mesh.dead)
        return True

    nodes = ["a@h", "b@h", "c@h"]
    with pytest.raises(UpgradeError) as info:
        rollout_module.rolling_upgrade(
            nodes, upgrade="m.up", check=check, stop_on_error=False, out=lambda _: None
        )
    assert mesh.called == nodes
    assert info.value.rollout.upgraded == ["a@h", "c@h"]  # type: ignore[attr-defined]
    assert checked == [["a@h"], ["c@h"]]
