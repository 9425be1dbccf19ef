"""The membership view: events and the clock in, effects out (no sockets)."""

from __future__ import annotations

import random

from hotmesh._membership.view import (
    Effect,
    Hail,
    Link,
    MembershipView,
    NodeDown,
    NodeUp,
    Probe,
    Refuse,
    Renounce,
    Unlink,
    Welcome,
    older,
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


def test_gossiped_member_that_never_answers_is_unlinked_and_redialled_later() -> None:
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
    view.hello("b@h", "1-old", "tcp://b", now=0.0)
    effects = view.hello("b@h", "2-new", "tcp://b", now=1.0)
    assert effects == [
        Unlink("b@h", "1-old"),
        NodeDown("b@h", "restarted"),
        Link("b@h", "tcp://b", "2-new", hello=False),
        Welcome("b@h"),
        NodeUp("b@h"),
    ]
    assert view.incarnation_of("b@h") == "2-new"


def test_same_name_at_other_endpoint_is_refused_when_the_holder_answers_the_probe() -> None:
    view = make_view(down_after=3.0)
    view.hello("b@h", "1-old", "tcp://b1", now=0.0)
    assert view.hello("b@h", "2-new", "tcp://b2", now=1.0) == [Probe("b@h")]
    assert view.heard_from("b@h", "1-old", now=1.2) == [
        Refuse("b@h", "tcp://b2", "2-new", "name_in_use")
    ]
    assert view.incarnation_of("b@h") == "1-old"
    assert view.tick(now=10.0)[-1] == NodeDown("b@h", "timeout")  # only the old one existed


def test_same_name_at_other_endpoint_replaces_a_holder_that_stays_silent() -> None:
    view = make_view(down_after=3.0)
    view.hello("b@h", "1-old", "tcp://b1", now=0.0)
    view.heard_from("b@h", "1-old", now=0.5)
    view.hello("b@h", "2-new", "tcp://b2", now=1.0)
    effects = view.tick(now=4.1)
    assert NodeDown("b@h", "timeout") in effects or NodeDown("b@h", "replaced") in effects
    assert NodeUp("b@h") in effects
    assert view.incarnation_of("b@h") == "2-new"
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
    assert view.heard_from("b@h", "inc-b", now=1.6) == [
        Link("b@h", "tcp://b", "inc-b", hello=True, fresh=True)
    ]
    assert view.welcome("b@h", "inc-b", "tcp://b", now=1.7)[-1] == NodeUp("b@h")


def test_members_lists_self_and_up_peers() -> None:
    view = make_view()
    view.hello("b@h", "inc-b", "tcp://b", now=0.0)
    view.gossip([("c@h", "tcp://c", "i")], now=0.0)
    assert view.members("tcp://a") == [("a@h", "tcp://a", "inc-a"), ("b@h", "tcp://b", "inc-b")]


# ---- redials, backoff, conflicts ----------------------------------------------------


class NoJitter(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2


def redial_view() -> MembershipView:
    return MembershipView(
        "a@h",
        "5-a",
        down_after=1.0,
        dial_timeout=1.0,
        redial_min=0.5,
        redial_max=2.0,
        forget_after=30.0,
        rng=NoJitter(),
    )


def dials(effects: list[Effect]) -> list[Link]:
    return [e for e in effects if isinstance(e, Link) and e.hello]


def test_a_peer_that_went_silent_is_redialled_with_backoff_until_it_answers() -> None:
    view = redial_view()
    view.hello("b@h", "inc-b", "tcp://b", now=0.0)
    assert NodeDown("b@h", "timeout") in view.tick(now=1.5)
    assert view.lost() == ["b@h"]
    assert view.tick(now=1.9) == []
    assert dials(view.tick(now=2.0)) == [Link("b@h", "tcp://b", "inc-b", hello=True, fresh=True)]
    # No answer within the dial timeout: closed, next try after twice the wait.
    assert view.tick(now=3.1) == [Unlink("b@h", "inc-b")]
    assert dials(view.tick(now=3.9)) == []
    assert dials(view.tick(now=4.2))
    view.tick(now=5.3)
    assert dials(view.tick(now=7.2)) == []  # capped at redial_max: next at 5.3 + 2.0
    assert dials(view.tick(now=7.4))
    # The network is back: its welcome brings it up again.
    assert view.welcome("b@h", "inc-b", "tcp://b", now=7.5)[-1] == NodeUp("b@h")
    assert view.lost() == []


def test_a_lost_peer_is_forgotten_after_forget_after() -> None:
    view = redial_view()
    view.hello("b@h", "inc-b", "tcp://b", now=0.0)
    view.tick(now=1.5)
    now = 1.5
    while now < 40.0:
        now += 0.25
        view.tick(now=now)
    assert view.lost() == []
    assert dials(view.tick(now=now + 10)) == []


def test_a_peer_that_said_bye_is_not_redialled() -> None:
    view = redial_view()
    view.hello("b@h", "inc-b", "tcp://b", now=0.0)
    view.bye("b@h", "inc-b", now=0.5)
    assert view.lost() == []


def test_a_closed_connection_reports_nodedown_at_once_and_redials() -> None:
    view = redial_view()
    view.hello("b@h", "inc-b", "tcp://b", now=0.0)
    assert view.disconnected("b@h", "other", now=0.1) == []
    assert view.disconnected("b@h", "inc-b", now=0.1) == [
        Unlink("b@h", "inc-b"),
        NodeDown("b@h", "connection closed"),
    ]
    assert view.lost() == ["b@h"]
    view.welcome("b@h", "inc-b", "tcp://b", now=0.5)
    assert view.disconnected("b@h", "inc-b", now=0.6, why="never connected")[-1] == NodeDown(
        "b@h", "never connected"
    )


def test_a_view_is_settled_only_while_nothing_waits_on_the_clock() -> None:
    view = redial_view()
    assert view.is_settled()
    view.gossip([("b@h", "tcp://b", "inc-b")], now=0.0)
    assert not view.is_settled()  # a dial waits for its answer
    view.welcome("b@h", "inc-b", "tcp://b", now=0.1)
    assert view.is_settled()
    view.disconnected("b@h", "inc-b", now=0.2)
    assert not view.is_settled()  # a lost peer waits for its redial
    view.tick(now=0.8)
    view.welcome("b@h", "inc-b", "tcp://b", now=0.9)
    assert view.is_settled()


def test_gossip_of_a_lost_member_leaves_it_to_the_redial_schedule() -> None:
    view = redial_view()
    view.hello("b@h", "inc-b", "tcp://b", now=0.0)
    view.tick(now=1.5)
    assert view.gossip([("b@h", "tcp://b", "inc-b")], now=1.6) == []
    assert view.gossip([("b@h", "tcp://b2", "inc-b2")], now=1.6) == [
        Link("b@h", "tcp://b2", "inc-b2", hello=True)
    ]


def test_incarnations_order_by_start_time() -> None:
    assert older("17a-ff", "17b-00")
    assert not older("17b-00", "17a-ff")
    assert older("fff-1", "1000-0")  # numbers, not text


def test_after_a_heal_the_older_run_of_a_name_keeps_it() -> None:
    view = redial_view()
    view.hello("n@h", "20-new", "tcp://n2", now=0.0)  # our side's run
    # Gossip from the other side names another run: meet it.
    assert view.gossip([("n@h", "tcp://n1", "10-old")], now=1.0) == [Hail("tcp://n1")]
    assert view.gossip([("n@h", "tcp://n1", "10-old")], now=1.1) == []  # not twice at once
    # It answers: it is older, so it keeps the name; ours is told and dropped for good.
    assert view.welcome("n@h", "10-old", "tcp://n1", now=1.2) == [
        Unlink("n@h", "20-new"),
        NodeDown("n@h", "name_conflict"),
        Refuse("n@h", "tcp://n2", "20-new", "name_conflict"),
        Link("n@h", "tcp://n1", "10-old", hello=False),
        NodeUp("n@h"),
    ]
    assert view.lost() == []
    # The loser is never taken back.
    assert view.gossip([("n@h", "tcp://n2", "20-new")], now=5.0) == []
    assert view.hello("n@h", "20-new", "tcp://n2", now=5.0) == [
        Refuse("n@h", "tcp://n2", "20-new", "name_in_use")
    ]


def test_after_a_heal_a_newer_run_that_answers_is_refused() -> None:
    view = redial_view()
    view.hello("n@h", "10-old", "tcp://n1", now=0.0)
    view.gossip([("n@h", "tcp://n2", "20-new")], now=1.0)
    assert view.welcome("n@h", "20-new", "tcp://n2", now=1.1) == [
        Refuse("n@h", "tcp://n2", "20-new", "name_conflict")
    ]
    assert view.incarnation_of("n@h") == "10-old"


def test_an_older_run_of_our_own_name_makes_us_renounce() -> None:
    view = redial_view()
    view.hello("b@h", "inc-b", "tcp://b", now=0.0)
    effects = view.hello("a@h", "1-older", "tcp://a2", now=1.0)
    assert effects[0] == Renounce("tcp://a2", "1-older")
    assert NodeDown("b@h", "name_conflict") in effects
    assert view.renounced and view.up() == []
    assert view.tick(now=10.0) == []
    assert view.hello("c@h", "inc-c", "tcp://c", now=10.0) == []


def test_a_newer_run_of_our_own_name_is_refused() -> None:
    view = redial_view()
    assert view.hello("a@h", "9-newer", "tcp://a2", now=1.0) == [
        Refuse("a@h", "tcp://a2", "9-newer", "name_in_use")
    ]
    assert not view.renounced


def test_a_renounced_node_never_refuses_anyone() -> None:
    view = redial_view()
    view.hello("a@h", "1-older", "tcp://a2", now=1.0)  # we renounce
    assert view.hello("a@h", "1-older", "tcp://a2", now=2.0) == []
    assert view.hello("a@h", "9-newer", "tcp://a3", now=2.0) == []


def judge_view() -> MembershipView:
    """A view as a node runs it: silence judged by libzmq, links by the driver."""
    return MembershipView(
        "a@h",
        "inc-a",
        down_after=3.0,
        connect_within=8.0,
        silence_kills=False,
        rng=random.Random(1),
    )


def test_a_peer_whose_link_never_connected_is_down_once_it_is_silent_too() -> None:
    view = judge_view()
    view.hello("b@h", "inc-b", "tcp://b", now=0.0)
    # Our link to it has had no connection for 8 s: we heard its hello at 0.
    assert view.never_connected([("b@h", "inc-b")], now=8.0) == []
    assert view.never_connected([("b@h", "inc-b")], now=8.5) == [
        Unlink("b@h", "inc-b"),
        NodeDown("b@h", "never connected"),
    ]
    assert view.lost() == ["b@h"]  # redialled, as any peer lost


def test_a_peer_whose_traffic_reaches_us_is_not_down_though_our_link_never_connected() -> None:
    view = judge_view()
    view.hello("b@h", "inc-b", "tcp://b", now=0.0)
    view.heard_from("b@h", "inc-b", now=6.0)  # its own link to us works
    assert view.never_connected([("b@h", "inc-b")], now=13.0) == []
    assert view.is_up("b@h")
    view.hello("b@h", "inc-b", "tcp://b", now=12.0)  # its redial says hello again
    assert view.never_connected([("b@h", "inc-b")], now=19.0) == []
    assert view.never_connected([("b@h", "inc-b")], now=20.5)[-1] == NodeDown(
        "b@h", "never connected"
    )
    # Another incarnation's link, or a peer not up, is not this peer's.
    view.hello("c@h", "inc-c", "tcp://c", now=0.0)
    assert view.never_connected([("c@h", "old-c"), ("d@h", "inc-d")], now=30.0) == []


def test_calls_from_a_peer_whose_link_never_connected_count_as_its_traffic() -> None:
    view = judge_view()
    view.hello("b@h", "inc-b", "tcp://b", now=0.0)
    # Calls skip the view while their traffic changes nothing there ...
    assert view.hears_nothing_new("b@h")
    # ... but not while our link to the caller has no connection.
    view.listen_to(["b@h"])
    assert view.listening() == frozenset({"b@h"})
    assert not view.hears_nothing_new("b@h")
    view.listen_to([])
    assert view.hears_nothing_new("b@h")


def test_lost_since_says_how_long_ago_and_why_while_the_peer_is_not_up() -> None:
    view = redial_view()
    view.hello("b@h", "inc-b", "tcp://b", now=0.0)
    view.disconnected("b@h", "inc-b", now=1.0)
    assert view.lost_since(now=3.0) == {"b@h": (2.0, "connection closed")}
    view.tick(now=3.0)  # redialled meanwhile, not up yet: still lost, since the first loss
    assert view.lost_since(now=3.5) == {"b@h": (2.5, "connection closed")}
    view.welcome("b@h", "inc-b", "tcp://b", now=4.0)
    assert view.lost_since(now=4.0) == {}
    view.bye("b@h", "inc-b", now=4.5)  # left on purpose: not lost
    assert view.lost_since(now=5.0) == {}


def test_a_member_heard_of_and_never_reached_is_lost_as_never_connected() -> None:
    view = redial_view()
    view.hello("b@h", "inc-b", "tcp://b", now=0.0)
    view.gossip([("c@h", "tcp://c", "inc-c")], now=0.0)
    view.heard_from("b@h", "inc-b", now=1.9)
    view.tick(now=2.0)  # c's dial timed out; b is heard
    assert view.lost_since(now=3.0) == {"c@h": (1.0, "never connected")}
