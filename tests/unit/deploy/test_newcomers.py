"""The nodeup check: a newcomer behind the fleet's release, or missing its actions, told
by casts (one each way per nodeup)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hotmesh.deploy import _newcomers
from hotmesh.deploy._newcomers import behind_notice, teller
from hotmesh.deploy.notices import add_notice_listener
from hotmesh.testing.fakes import FakeNode


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


class Peerage(FakeNode):
    """A fake node with peers that records its casts."""

    def __init__(self, name: str, state_dir: Path, peers: list[str]) -> None:
        super().__init__(name, state_dir)
        self.peers = peers
        self.casts: list[tuple[str, str | Callable[..., Any], tuple[Any, ...]]] = []

    def nodes(self) -> list[str]:
        return list(self.peers)

    def cast(
        self, target: str, fn: str | Callable[..., Any], *args: Any, timeout: float = 5.0, **kw: Any
    ) -> None:
        self.casts.append((target, fn, args))


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Peerage]:
    node = Peerage("a@h", tmp_path, ["b@h"])
    yield node
    node.close()


@pytest.fixture
def told(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """This node's status as release_status() reports it (the test sets it)."""
    mine = [status("a@h", "v2+aaaa1111", ["fix-limit"], upgraded_at=100.0, ready=True)]
    monkeypatch.setattr(_newcomers, "release_status", lambda: mine[0])
    return mine


def test_the_teller_is_one_node_of_each_pair_and_about_half_of_them() -> None:
    names = [f"n{i}@h" for i in range(64)]
    for a in names[:8]:
        for b in names:
            if a != b:
                assert teller(a, b) == teller(b, a) in (a, b)
    tells = sum(teller("n0@h", b) == "n0@h" for b in names[1:])
    assert 16 < tells < 48


def test_each_nodeup_costs_one_cast_per_pair_and_peers_met_before_are_asked_back(
    node: Peerage, told: list[dict[str, Any]]
) -> None:
    tells = next(f"p{i}@h" for i in range(100) if teller("a@h", f"p{i}@h") == "a@h")
    hears = next(f"p{i}@h" for i in range(100) if teller("a@h", f"p{i}@h") != "a@h")
    stop = _newcomers.watch(node, None)  # type: ignore[arg-type]
    node.monitors[0]("nodeup", tells)
    node.monitors[0]("nodeup", hears)  # the other node of that pair tells
    node.monitors[0]("nodedown", "b@h")
    stop()
    assert node.monitors == []
    # b was up before the watch: told, and asked for its status in return.
    assert node.casts == [
        ("b@h", "hotmesh.deploy._newcomers.met", (told[0], True)),
        (tells, "hotmesh.deploy._newcomers.met", (told[0], False)),
    ]


def test_a_peer_told_a_status_behind_its_own_flags_it_and_answers_when_asked(
    node: Peerage, told: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_newcomers, "current_node", lambda: node)
    notices: list[tuple[str, str]] = []
    remove = add_notice_listener(lambda name, text: notices.append((name, text)))
    try:
        _newcomers.met(status("b@h", "v2+bbbb2222"), True)
        _newcomers.met(status("c@h", "v2+aaaa1111", ["fix-limit"]))
        told[0] = {**told[0], "ready": False}  # still starting: judges nothing yet
        _newcomers.met(status("d@h", "v1+dddd4444"), True)
    finally:
        remove()
    assert [(name, "b@h joined on v2" in text) for name, text in notices] == [("a@h", True)]
    assert [(target, args[1]) for target, _, args in node.casts] == [("b@h", False)]


def test_the_node_told_sends_the_teller_the_notice_the_teller_would_give(
    node: Peerage, told: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_newcomers, "current_node", lambda: node)
    # This node runs v2 without the action the teller (b) ran there.
    told[0] = status("a@h", "v2+aaaa1111", ready=True)
    notices: list[tuple[str, str]] = []
    remove = add_notice_listener(lambda name, text: notices.append((name, text)))
    try:
        _newcomers.met(status("b@h", "v2+bbbb2222", ["fix-limit"], upgraded_at=100.0))
        assert notices == []  # b is not behind this node
        ((target, fn, (text,)),) = node.casts
        assert (target, fn) == ("b@h", "hotmesh.deploy._newcomers.flagged")
        assert "a@h joined on v2 with upgrade actions pending: fix-limit" in text
        # On b, the notice is given as its own judgement would have given it.
        _newcomers.flagged(text)
    finally:
        remove()
    assert notices == [("a@h", text)]
