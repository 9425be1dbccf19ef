"""Who is in the mesh: a pure view of peers (events + now -> effects), no I/O.

The driver feeds it what arrived (hello, welcome, any traffic, bye, gossip, a
closed connection) and the clock; it answers with effects the driver carries
out (link, welcome, refuse, probe, unlink, renounce, nodeup, nodedown).
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from hotmesh._record import field, record

Member = tuple[str, str, str]
"""One gossiped member: ``(name, endpoint, incarnation)``."""

_NOT_REDIALLED = ("stopped", "name_conflict")  # it left on purpose, or lost its name

FORGET_AFTER = 600.0
"""Seconds a lost peer is redialled before it is forgotten (seeds still heal later)."""


@record(frozen=True)
class Link:
    """Open (or keep) the outgoing connection to a peer; send hello if ``hello``.

    With ``fresh`` the connection is made anew (a redial after silence).
    """

    name: str
    endpoint: str
    incarnation: str
    hello: bool
    fresh: bool = False


@record(frozen=True)
class Welcome:
    """Tell a peer it is accepted (with our member list)."""

    name: str


@record(frozen=True)
class Refuse:
    """Tell a would-be peer it may not use its name (``reason`` says why)."""

    name: str
    endpoint: str
    incarnation: str
    reason: str


@record(frozen=True)
class Probe:
    """Ask the current holder of a name whether it is still alive."""

    name: str


@record(frozen=True)
class Hail:
    """Say hello once to an endpoint we keep no link to (another run of a known name)."""

    endpoint: str


@record(frozen=True)
class Unlink:
    """Close the outgoing connection to a peer incarnation."""

    name: str
    incarnation: str


@record(frozen=True)
class Renounce:
    """This node lost its name to an older node of the same name: leave the mesh."""

    endpoint: str
    incarnation: str


@record(frozen=True)
class NodeUp:
    """The peer is now a member (Erlang's ``nodeup``)."""

    name: str


@record(frozen=True)
class NodeDown:
    """The peer left the mesh (Erlang's ``nodedown``); ``reason`` says why."""

    name: str
    reason: str


Effect = Link | Welcome | Refuse | Probe | Hail | Unlink | Renounce | NodeUp | NodeDown


def older(a: str, b: str) -> bool:
    """Whether incarnation ``a`` started before ``b`` (start time first, then text).

    Incarnations are ``<start time in ns, hex>-<random hex>``; the order is the
    same on every node, so a name conflict is settled the same way everywhere.
    """
    return _age_key(a) < _age_key(b)


def _age_key(incarnation: str) -> tuple[int, str]:
    stamp, _, rest = incarnation.partition("-")
    try:
        return int(stamp, 16), rest
    except ValueError:
        return 1 << 80, incarnation


@record
class _Peer:
    endpoint: str
    incarnation: str
    last_heard: float
    up: bool
    since: float


@record
class _Lost:
    """A member that is not connected: redialled with backoff until forgotten."""

    endpoint: str
    incarnation: str
    delay: float
    next_try: float
    since: float
    reason: str


@record
class _Clash:
    endpoint: str
    incarnation: str
    deadline: float
    started: float
    replies: list[str] = field(default_factory=list)


class MembershipView:
    """The membership of one node, driven by events and the clock.

    A peer is *up* once a hello or welcome from it is accepted, and *down* when
    its connection closed, when nothing was heard from it for ``down_after``
    seconds (if ``silence_kills``), when our link to it never connected and
    nothing reached us from it for ``connect_within`` seconds either
    (``never_connected``), when it says bye, or when a new incarnation of the
    same name replaces it. A peer that went down, and a gossiped member
    that did not answer within ``dial_timeout``, is *lost* (unless it said
    bye or lost its name): redialled with
    exponential backoff and jitter (``redial_min`` doubling up to
    ``redial_max``) for ``forget_after`` seconds, so a healed partition becomes
    one mesh again by itself.

    Two live runs of one name (a hello from another endpoint, or found after a
    partition heals): a newer claimant starts a probe of the holder and is
    refused if the holder answers within ``down_after``, accepted otherwise;
    between two runs that both answer, the older keeps the name on every node
    and the newer is refused (and renounces when it learns it).
    """

    def __init__(
        self,
        me: str,
        incarnation: str,
        *,
        down_after: float,
        dial_timeout: float | None = None,
        redial_min: float | None = None,
        redial_max: float | None = None,
        connect_within: float | None = None,
        forget_after: float = FORGET_AFTER,
        silence_kills: bool = True,
        rng: random.Random | None = None,
    ) -> None:
        self.me = me
        self.incarnation = incarnation
        self.down_after = down_after
        self.dial_timeout = dial_timeout if dial_timeout is not None else down_after
        self.redial_min = redial_min if redial_min is not None else down_after / 3
        self.redial_max = redial_max if redial_max is not None else 4 * down_after / 3
        self.connect_within = connect_within if connect_within is not None else 2 * down_after
        self.forget_after = forget_after
        self.silence_kills = silence_kills
        self.renounced = False
        self._rng = rng or random.Random()
        self._peers: dict[str, _Peer] = {}
        self._lost: dict[str, _Lost] = {}
        self._clashes: dict[str, _Clash] = {}
        # Incarnations that lost their name to an older run: never linked again.
        self._losers: set[tuple[str, str]] = set()
        self._hailed: dict[tuple[str, str], float] = {}
        # Peers whose every message counts, calls included: our link to them has
        # no connection yet, and their traffic is what shows them alive.
        self._listening: frozenset[str] = frozenset()

    # ---- queries -------------------------------------------------------
    def up(self) -> list[str]:
        """Names of the peers that are up, sorted."""
        return sorted(name for name, peer in self._peers.items() if peer.up)

    def is_up(self, name: str) -> bool:
        """Whether ``name`` is an up peer."""
        peer = self._peers.get(name)
        return peer is not None and peer.up

    def hears_nothing_new(self, name: str) -> bool:
        """Whether traffic from ``name`` would change nothing: a known peer with no
        name clash pending, not listened to (``listen_to``), and silence not
        judged here (``last_heard`` unused).

        Read from other threads to skip noting traffic; a stale answer only
        delays that note to the peer's next message.
        """
        return (
            not self.silence_kills
            and name in self._peers
            and name not in self._clashes
            and name not in self._listening
        )

    def listening(self) -> frozenset[str]:
        """The peers given to the last ``listen_to``."""
        return self._listening

    def listen_to(self, names: Iterable[str]) -> None:
        """Note every message from these peers, calls included (``hears_nothing_new``
        says False for them): our links to them have no connection, and
        ``never_connected`` judges them by their traffic."""
        self._listening = frozenset(names)

    def incarnation_of(self, name: str) -> str | None:
        """The incarnation of the peer ``name`` (up or being linked), else None."""
        peer = self._peers.get(name)
        return peer.incarnation if peer else None

    def endpoint_of(self, name: str) -> str | None:
        """The endpoint of an up peer, else None."""
        peer = self._peers.get(name)
        return peer.endpoint if peer and peer.up else None

    def is_settled(self) -> bool:
        """Whether nothing waits on the clock: every known peer up, none lost, no name clash."""
        return not self._lost and not self._clashes and all(p.up for p in self._peers.values())

    def lost(self) -> list[str]:
        """Names of the members being redialled, sorted."""
        return sorted(self._lost)

    def lost_since(self, now: float) -> dict[str, tuple[float, str]]:
        """Members lost and being redialled, not up now: name -> (seconds since they
        were lost, why: the nodedown's reason, or "never connected")."""
        return {
            name: (now - lost.since, lost.reason)
            for name, lost in self._lost.items()
            if not self.is_up(name)
        }

    def members(self, my_endpoint: str) -> list[Member]:
        """The gossip list: this node and every up peer."""
        own: list[Member] = [(self.me, my_endpoint, self.incarnation)]
        return own + [
            (name, peer.endpoint, peer.incarnation)
            for name, peer in sorted(self._peers.items())
            if peer.up
        ]

    # ---- events --------------------------------------------------------
    def hello(self, name: str, incarnation: str, endpoint: str, now: float) -> list[Effect]:
        """A peer asks to join (a hello); returns what to do."""
        return self._introduce(name, incarnation, endpoint, now, asked=True)

    def welcome(self, name: str, incarnation: str, endpoint: str, now: float) -> list[Effect]:
        """A peer accepted us (a welcome); returns what to do."""
        return self._introduce(name, incarnation, endpoint, now, asked=False)

    def heard_from(self, name: str, incarnation: str, now: float) -> list[Effect]:
        """Any message arrived from this peer incarnation."""
        if self.renounced:
            return []
        peer = self._peers.get(name)
        if peer is None:
            lost = self._lost.get(name)
            if lost is None or lost.incarnation != incarnation or name in self._clashes:
                return []
            # Traffic from a peer we lost: it is alive, link again now.
            return self._dial(name, now)
        if peer.incarnation != incarnation:
            return []
        peer.last_heard = now
        clash = self._clashes.pop(name, None)
        if clash is not None and now >= clash.started:
            # The holder of the name answered: the newcomer is a duplicate.
            self._loser(name, clash.incarnation)
            return [Refuse(name, clash.endpoint, clash.incarnation, "name_in_use")]
        return []

    def bye(self, name: str, incarnation: str, now: float = 0.0) -> list[Effect]:
        """The peer said it is stopping."""
        peer = self._peers.get(name)
        if peer is None or peer.incarnation != incarnation:
            return []
        return self._drop(name, "stopped", now)

    def disconnected(
        self, name: str, incarnation: str, now: float, why: str = "connection closed"
    ) -> list[Effect]:
        """Our connection to this peer incarnation closed (its process died, or silence);
        ``why`` is the nodedown reason."""
        peer = self._peers.get(name)
        if peer is None or peer.incarnation != incarnation or not peer.up:
            return []
        return self._drop(name, why, now)

    def never_connected(self, links: Iterable[tuple[str, str]], now: float) -> list[Effect]:
        """Our links to these peer incarnations ``(name, incarnation)`` have had no
        connection for ``connect_within`` seconds (the driver times them).

        An up peer among them is down ("never connected") unless something of
        its own reached us within ``connect_within``: its link to us works, so
        it is alive, and ours is only slow to connect (handshakes queue for
        seconds behind a CPU busy with nodes started all at once). A peer that
        vanished before our link was ever made falls silent, and is down
        ``connect_within`` after the last we heard of it.
        """
        effects: list[Effect] = []
        for name, incarnation in links:
            peer = self._peers.get(name)
            if peer is None or peer.incarnation != incarnation or not peer.up:
                continue
            if now - peer.last_heard > self.connect_within:
                effects += self._drop(name, "never connected", now)
        return effects

    def gossip(self, members: list[Member], now: float) -> list[Effect]:
        """A member list arrived; link to every member we do not know yet."""
        if self.renounced:
            return []
        effects: list[Effect] = []
        for name, endpoint, incarnation in members:
            if (name, incarnation) in self._losers:
                continue
            if name == self.me:
                if incarnation != self.incarnation:
                    effects += self._hail(name, incarnation, endpoint, now)
                continue
            if name in self._clashes:
                continue  # a probe is settling it
            peer = self._peers.get(name)
            if peer is not None:
                if peer.up and peer.incarnation != incarnation and peer.endpoint != endpoint:
                    # Another live run of a known name, out of sight until now (a
                    # healed partition): meet it; its answer settles who keeps it.
                    effects += self._hail(name, incarnation, endpoint, now)
                continue
            lost = self._lost.get(name)
            if lost is not None and lost.incarnation == incarnation:
                continue  # the redial schedule covers it
            self._lost.pop(name, None)
            self._peers[name] = _Peer(endpoint, incarnation, now, up=False, since=now)
            effects.append(Link(name, endpoint, incarnation, hello=True))
        return effects

    def tick(self, now: float) -> list[Effect]:
        """Advance the clock: silent peers go down, dials time out, lost peers are redialled."""
        effects: list[Effect] = []
        for name, peer in list(self._peers.items()):
            if peer.up:
                if self.silence_kills and now - peer.last_heard > self.down_after:
                    effects += self._drop(name, "timeout", now)
            elif now - peer.since > self.dial_timeout:
                del self._peers[name]
                effects.append(Unlink(name, peer.incarnation))
                self._lose(name, peer, now)
        for name, clash in list(self._clashes.items()):
            if now >= clash.deadline:
                del self._clashes[name]
                if name in self._peers:  # the holder may have timed out just above
                    effects += self._drop(name, "replaced", now)
                effects += self._accept(name, clash.incarnation, clash.endpoint, now, asked=True)
        if self.renounced:
            return effects
        for name, lost in list(self._lost.items()):
            if name in self._peers:
                continue  # being dialled
            if now - lost.since > self.forget_after:
                del self._lost[name]
            elif now >= lost.next_try:
                effects += self._dial(name, now)
        return effects

    def renounce(self, now: float) -> list[Effect]:
        """Leave the mesh for good (our name belongs to an older run): drop every peer."""
        self.renounced = True
        effects: list[Effect] = []
        for name in list(self._peers):
            effects += self._drop(name, "name_conflict", now)
        self._lost.clear()
        self._clashes.clear()
        return effects

    # ---- internals -----------------------------------------------------
    def _introduce(
        self, name: str, incarnation: str, endpoint: str, now: float, *, asked: bool
    ) -> list[Effect]:
        if name == self.me:
            if incarnation == self.incarnation or self.renounced:
                return []  # we dialled ourselves through a seed, or we left
            if older(incarnation, self.incarnation):
                return [Renounce(endpoint, incarnation), *self.renounce(now)]
            self._loser(name, incarnation)
            return [Refuse(name, endpoint, incarnation, "name_in_use")]
        if self.renounced:
            return []
        if (name, incarnation) in self._losers:
            return [Refuse(name, endpoint, incarnation, "name_in_use")] if asked else []
        peer = self._peers.get(name)
        if peer is None or peer.incarnation == incarnation:
            return self._accept(name, incarnation, endpoint, now, asked=asked)
        if not peer.up or peer.endpoint == endpoint:
            # A restart: the old incarnation cannot hold the same port any more.
            return self._drop(name, "restarted", now) + self._accept(
                name, incarnation, endpoint, now, asked=asked
            )
        if older(incarnation, peer.incarnation):
            # It spoke, so it is alive, and it is the older run: it keeps the
            # name, here as on every node; our holder is the duplicate.
            self._loser(name, peer.incarnation)
            holder = peer
            effects = self._drop(name, "name_conflict", now)
            effects.append(Refuse(name, holder.endpoint, holder.incarnation, "name_conflict"))
            return effects + self._accept(name, incarnation, endpoint, now, asked=asked)
        if not asked:
            # A newer run answered our hail: it is the duplicate.
            self._loser(name, incarnation)
            return [Refuse(name, endpoint, incarnation, "name_conflict")]
        clash = self._clashes.get(name)
        if clash is None or clash.incarnation != incarnation:
            self._clashes[name] = _Clash(endpoint, incarnation, now + self.down_after, now)
            return [Probe(name)]
        return []

    def _accept(
        self, name: str, incarnation: str, endpoint: str, now: float, *, asked: bool
    ) -> list[Effect]:
        self._lost.pop(name, None)
        peer = self._peers.get(name)
        effects: list[Effect] = []
        if peer is None or peer.incarnation != incarnation:
            peer = _Peer(endpoint, incarnation, now, up=False, since=now)
            self._peers[name] = peer
        peer.last_heard = now
        peer.endpoint = endpoint
        effects.append(Link(name, endpoint, incarnation, hello=False))
        if asked:
            effects.append(Welcome(name))
        if not peer.up:
            peer.up = True
            peer.since = now
            effects.append(NodeUp(name))
        return effects

    def _drop(self, name: str, reason: str, now: float) -> list[Effect]:
        peer = self._peers.pop(name)
        effects: list[Effect] = [Unlink(name, peer.incarnation)]
        if peer.up:
            effects.append(NodeDown(name, reason))
        if reason not in _NOT_REDIALLED:
            self._lose(name, peer, now, reason)
        return effects

    def _lose(self, name: str, peer: _Peer, now: float, reason: str = "never connected") -> None:
        lost = self._lost.get(name)
        if lost is not None and lost.incarnation == peer.incarnation:
            lost.delay = min(2 * lost.delay, self.redial_max)
        else:
            lost = _Lost(peer.endpoint, peer.incarnation, self.redial_min, now, now, reason)
            self._lost[name] = lost
            while len(self._lost) > 4096:
                del self._lost[next(iter(self._lost))]
        lost.next_try = now + lost.delay * self._rng.uniform(0.75, 1.25)

    def _loser(self, name: str, incarnation: str) -> None:
        if len(self._losers) > 4096:
            self._losers.clear()
        self._losers.add((name, incarnation))

    def _hail(self, name: str, incarnation: str, endpoint: str, now: float) -> list[Effect]:
        last = self._hailed.get((name, incarnation))
        if last is not None and now - last < self.redial_max:
            return []
        if len(self._hailed) > 4096:
            self._hailed.clear()
        self._hailed[(name, incarnation)] = now
        return [Hail(endpoint)]

    def _dial(self, name: str, now: float) -> list[Effect]:
        lost = self._lost[name]
        self._peers[name] = _Peer(lost.endpoint, lost.incarnation, now, up=False, since=now)
        return [Link(name, lost.endpoint, lost.incarnation, hello=True, fresh=True)]
