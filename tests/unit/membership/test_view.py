"""The membership view: events and the clock in, effects out (no sockets)."""

from __future__ import annotations

from hotmesh._membership.view import (
    Link,
    MembershipView,
    NodeDown,
    NodeUp,
    Probe,
    Refuse,
    Unlink,
    Welcome,
)


def make_view(down_after: float = 3.0) -> MembershipView:
    return MembershipView("a@h", "inc-a", down_after=down_after)


def test_hello_from_new_peer_links_welcomes_and_reports_nodeup() -> None:
    view = make_view()
    effects = view.hello("b@h", "inc-b", "tcp://b", now=0.0)
    assert effects == [Link("b@h", "tcp://b", "inc-b", hello=False), Welcome("b@h"), NodeUp("b@h")]
    assert view.up() == ["b@h"]


def test_welcome_from_new_peer_links_without_welcoming_back() -> None:
    view = make_view()
    effects = view.welcome("b@h", "inc-b", "tcp://b", now=0.0)
    assert effects == [Link("b@h", "tcp://b", "inc-b", hello=False), NodeUp("b@h")]


def test_second_hello_of_same_incarnation_is_welcomed_without_second_nodeup() -> None:
    view = make_view()
    view.hello("b@h", "inc-b", "tcp://b", now=0.0)
    effects = view.hello("b@h", "inc-b", "tcp://b", now=1.0)
    assert NodeUp("b@h") not in effects
    assert Welcome("b@h") in effects


def test_silent_peer_is_marked_down_after_down_after() -> None:
    view = make_view(down_after=3.0)
    view.hello("b@h", "inc-b", "tcp://b", now=0.0)
    assert view.tick(now=2.9) == []
    assert view.tick(now=3.1) == [Unlink("b@h", "inc-b"), NodeDown("b@h", "timeout")]
    assert view.up() == []


def test_traffic_keeps_a_peer_up() -> None:
    view = make_view(down_after=3.0)
    view.hello("b@h", "inc-b", "tcp://b", now=0.0)
    assert view.heard_from("b@h", "inc-b", now=2.0) == []
    assert view.tick(now=4.0) == []


def test_traffic_from_another_incarnation_does_not_keep_a_peer_up() -> None:
    view = make_view(down_after=3.0)
    view.hello("b@h", "inc-b", "tcp://b", now=0.0)
    view.heard_from("b@h", "other", now=2.0)
    assert NodeDown("b@h", "timeout") in view.tick(now=3.5)


def test_bye_reports_nodedown_at_once() -> None:
    view = make_view()
    view.hello("b@h", "inc-b", "tcp://b", now=0.0)
    assert view.bye("b@h", "inc-b") == [Unlink("b@h", "inc-b"), NodeDown("b@h", "stopped")]


def test_gossip_links_unknown_members_only() -> None:
    view = make_view()
    view.hello("b@h", "inc-b", "tcp://b", now=0.0)
    members = [("a@h", "tcp://a", "inc-a"), ("b@h", "tcp://b", "inc-b"), ("c@h", "tcp://c", "i")]
    assert view.gossip(members, now=0.0) == [Link("c@h", "tcp://c", "i", hello=True)]
    assert view.gossip(members, now=0.1) == []
    assert view.up() == ["b@h"]  # c is up only once it answers


def test_gossiped_member_that_never_answers_is_forgotten_quietly() -> None:
    view = make_view(down_after=1.0)
    view.gossip([("c@h", "tcp://c", "i")], now=0.0)
    assert view.tick(now=2.5) == [Unlink("c@h", "i")]


def test_gossip_does_not_revive_a_dead_incarnation() -> None:
    view = make_view(down_after=1.0)
    view.hello("b@h", "inc-b", "tcp://b", now=0.0)
    view.tick(now=2.0)
    assert view.gossip([("b@h", "tcp://b", "inc-b")], now=2.1) == []


def test_restart_on_same_endpoint_replaces_the_old_incarnation() -> None:
    view = make_view()
    view.hello("b@h", "old", "tcp://b", now=0.0)
    effects = view.hello("b@h", "new", "tcp://b", now=1.0)
    assert effects == [
        Unlink("b@h", "old"),
        NodeDown("b@h", "restarted"),
        Link("b@h", "tcp://b", "new", hello=False),
        Welcome("b@h"),
        NodeUp("b@h"),
    ]
    assert view.incarnation_of("b@h") == "new"


def test_same_name_at_other_endpoint_is_refused_when_the_holder_answers_the_probe() -> None:
    view = make_view(down_after=3.0)
    view.hello("b@h", "old", "tcp://b1", now=0.0)
    assert view.hello("b@h", "new", "tcp://b2", now=1.0) == [Probe("b@h")]
    assert view.heard_from("b@h", "old", now=1.2) == [
        Refuse("b@h", "tcp://b2", "new", "name_in_use")
    ]
    assert view.incarnation_of("b@h") == "old"
    assert view.tick(now=10.0)[-1] == NodeDown("b@h", "timeout")  # only the old one existed


def test_same_name_at_other_endpoint_replaces_a_holder_that_stays_silent() -> None:
    view = make_view(down_after=3.0)
    view.hello("b@h", "old", "tcp://b1", now=0.0)
    view.heard_from("b@h", "old", now=0.5)
    view.hello("b@h", "new", "tcp://b2", now=1.0)
    effects = view.tick(now=4.1)
    assert NodeDown("b@h", "timeout") in effects or NodeDown("b@h", "replaced") in effects
    assert NodeUp("b@h") in effects
    assert view.incarnation_of("b@h") == "new"
    assert view.endpoint_of("b@h") == "tcp://b2"


def test_hello_claiming_our_own_name_is_refused() -> None:
    view = make_view()
    assert view.hello("a@h", "intruder", "tcp://x", now=0.0) == [
        Refuse("a@h", "tcp://x", "intruder", "name_in_use")
    ]


def test_hello_from_ourselves_through_a_seed_is_ignored() -> None:
    view = make_view()
    assert view.hello("a@h", "inc-a", "tcp://a", now=0.0) == []


def test_traffic_from_a_peer_declared_down_links_again() -> None:
    view = make_view(down_after=1.0)
    view.hello("b@h", "inc-b", "tcp://b", now=0.0)
    view.tick(now=1.5)
    assert view.heard_from("b@h", "inc-b", now=1.6) == [Link("b@h", "tcp://b", "inc-b", hello=True)]
    assert view.welcome("b@h", "inc-b", "tcp://b", now=1.7)[-1] == NodeUp("b@h")


def test_members_lists_self_and_up_peers() -> None:
    view = make_view()
    view.hello("b@h", "inc-b", "tcp://b", now=0.0)
    view.gossip([("c@h", "tcp://c", "i")], now=0.0)
    assert view.members("tcp://a") == [("a@h", "tcp://a", "inc-a"), ("b@h", "tcp://b", "inc-b")]
