"""The nodeup check: a newcomer behind the fleet's release, or missing its actions."""

from __future__ import annotations

from typing import Any

from hotmesh.deploy._newcomers import behind_notice


def status(node: str, version: str, done: list[str] = (), **extra: Any) -> dict[str, Any]:  # type: ignore[assignment]
    return {"node": node, "version": version, "done": list(done), "pending": [], **extra}


def test_newcomer_on_an_older_release_than_the_latest_upgrade_is_flagged() -> None:
    mine = status("a@h", "v2+aaaa1111", upgraded_at=100.0)
    text = behind_notice(mine, status("b@h", "v1+bbbb2222"))
    assert text is not None and "b@h joined behind the fleet's release" in text
    assert "v1+bbbb2222" in text and "nodes_not_at('v2')" in text


def test_newcomer_on_this_release_without_its_actions_is_flagged() -> None:
    mine = status("a@h", "v2+aaaa1111", ["fix-limit"], upgraded_at=100.0)
    text = behind_notice(mine, status("b@h", "v2+bbbb2222"))
    assert text is not None and "joined on v2 with upgrade actions pending: fix-limit" in text


def test_newcomer_level_with_this_node_or_undecidable_is_not_flagged() -> None:
    mine = status("a@h", "v2+aaaa1111", ["fix-limit"], upgraded_at=100.0)
    assert behind_notice(mine, status("b@h", "v2+aaaa1111", ["fix-limit"])) is None
    # Neither upgraded, different releases: no fleet release to judge by.
    assert behind_notice(status("a@h", "v1+a"), status("b@h", "v2+b")) is None
    assert behind_notice(mine, "not a status") is None  # type: ignore[arg-type]
