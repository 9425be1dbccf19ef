"""The fleet view: pending actions only a comparison shows, nodes behind, the table."""

from __future__ import annotations

import json
from typing import Any

from hotmesh.deploy import Unreachable
from hotmesh.deploy.fleet import NodeVersion, fleet_release, versions_from


def status(version: str, done: list[str] = (), **extra: Any) -> dict[str, Any]:  # type: ignore[assignment]
    return {"version": version, "done": list(done), "pending": [], "drift": [], **extra}


def test_node_missing_an_action_its_release_ran_elsewhere_is_pending() -> None:
    versions = versions_from(
        {
            "a@h": status("v2+aaaa1111", ["fix-limit"], upgraded_at=100.0),
            "b@h": status("v2+bbbb2222"),  # restarted onto the v2 files before its turn
            "c@h": status("v1+cccc3333"),
        }
    )
    a, b, c = versions["a@h"], versions["b@h"], versions["c@h"]
    assert isinstance(b, NodeVersion) and b == "v2+bbbb2222"
    assert b.pending == ("fix-limit",) and not b.is_at("v2")
    assert a.is_at("v2") and a.is_at("v2+aaaa1111") and not a.is_at("v1")
    assert c.behind == "v2" and a.behind is None and b.behind is None


def test_own_pending_actions_and_provisional_state_show_in_the_table() -> None:
    versions = versions_from(
        {
            "a@h": status("v2+aaaa1111", provisional_left=87.4, drift=["shop.cart"]),
            "b@h": status("v2+aaaa1111", pending=["rebuild-index"]),
            "c@h": {"unreachable": "node c@h is down"},
        }
    )
    assert isinstance(versions["c@h"], Unreachable)
    lines = repr(versions).splitlines()
    assert lines[0].split() == ["node", "version", "airbag", "pending", "actions", "drift", "notes"]
    assert lines[1].split() == [
        "a@h",
        "v2+aaaa1111",
        "provisional,",
        "87",
        "s",
        "left",
        "-",
        "shop.cart",
    ]
    assert lines[2].split() == ["b@h", "v2+aaaa1111", "confirmed", "rebuild-index", "-"]
    assert lines[3].split()[:2] == ["c@h", "-"] and "unreachable: node c@h is down" in lines[3]
    data = json.loads(versions.as_json())
    assert data["a@h"]["provisional_left"] == 87.4
    assert data["b@h"]["pending"] == ["rebuild-index"]
    assert data["c@h"] == {"unreachable": "node c@h is down"}


def test_fleet_release_is_the_latest_upgrade_else_the_majority() -> None:
    assert fleet_release([status("v1+1", upgraded_at=5.0), status("v2+2", upgraded_at=9.0)]) == "v2"
    assert fleet_release([status("v1+1"), status("v1+1"), status("v2+2")]) == "v1"
    assert fleet_release([status("v1+1"), status("v2+2")]) is None
