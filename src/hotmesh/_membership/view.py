"""Who is in the mesh: a pure view of peers (events + now -> effects), no I/O.

The driver feeds it what arrived (hello, welcome, any traffic, bye, gossip) and
the clock; it answers with effects the driver carries out (link, welcome,
refuse, probe, unlink, nodeup, nodedown).
"""

from __future__ import annotations

from dataclasses import dataclass, field

Member = tuple[str, str, str]
"""One gossiped member: ``(name, endpoint, incarnation)``."""


@dataclass(frozen=True)
class Link:
    """Open (or keep) the outgoing connection to a peer; send hello if ``hello``."""

    name: str
    endpoint: str
    incarnation: str
    hello: bool


@dataclass(frozen=True)
class Welcome:
    """Tell a peer it is accepted (with our member list)."""

    name: str


@dataclass(frozen=True)
class Refuse:
    """Tell a would-be peer it may not join (its name is taken)."""

    name: str
    endpoint: str
    incarnation: str
    reason: str


@dataclass(frozen=True)
class Probe:
    """Ask the current holder of a name whether it is still alive."""

    name: str


@dataclass(frozen=True)
class Unlink:
    """Close the outgoing connection to a peer incarnation."""

    name: str
    incarnation: str


@dataclass(frozen=True)
class NodeUp:
    """The peer is now a member (Erlang's ``nodeup``)."""

    name: str


@dataclass(frozen=True)
class NodeDown:
    """The peer left the mesh (Erlang's ``nodedown``); ``reason`` says why."""

    name: str
    reason: str


Effect = Link | Welcome | Refuse | Probe | Unlink | NodeUp | NodeDown


@dataclass
class _Peer:
    endpoint: str
    incarnation: str
    last_heard: float
    up: bool
    since: float


@dataclass
class _Clash:
    endpoint: str
    incarnation: str
    deadline: float
    started: float
    replies: list[str] = field(default_factory=list)


class MembershipView:
    """The membership of one node, driven by events and the clock.

    A peer is *up* once a hello or welcome from it is accepted, and *down* when
    nothing was heard from it for ``down_after`` seconds, when it says bye, or
    when a new incarnation of the same name replaces it. A hello that claims a
    name held by a live incarnation at another endpoint starts a probe of the
    holder; if the holder answers within ``down_after`` the newcomer is refused,
    otherwise the holder is declared down and the newcomer accepted.
    """

    def __init__(self, me: str, incarnation: str, *, down_after: float) -> None:
        self.me = me
        self.incarnation = incarnation
        self.down_after = down_after
        self._peers: dict[str, _Peer] = {}
        self._clashes: dict[str, _Clash] = {}
        # Incarnations that went down, with their endpoints (oldest first).
        self._dead: dict[tuple[str, str], str] = {}

    # ---- queries -------------------------------------------------------
    def up(self) -> list[str]:
        """Names of the peers that are up, sorted."""
        return sorted(name for name, peer in self._peers.items() if peer.up)

    def is_up(self, name: str) -> bool:
        """Whether ``name`` is an up peer."""
        peer = self._peers.get(name)
        return peer is not None and peer.up

    def incarnation_of(self, name: str) -> str | None:
        """The incarnation of the peer ``name`` (up or being linked), else None."""
        peer = self._peers.get(name)
        return peer.incarnation if peer else None

    def endpoint_of(self, name: str) -> str | None:
        """The endpoint of an up peer, else None."""
        peer = self._peers.get(name)
        return peer.endpoint if peer and peer.up else None

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
        peer = self._peers.get(name)
        if peer is None:
            endpoint = self._dead.get((name, incarnation))
            if endpoint is None or name in self._clashes:
                return []
            # Traffic from a peer we declared down: it is alive, link again.
            self._peers[name] = _Peer(endpoint, incarnation, now, up=False, since=now)
            return [Link(name, endpoint, incarnation, hello=True)]
        if peer.incarnation != incarnation:
            return []
        peer.last_heard = now
        clash = self._clashes.pop(name, None)
        if clash is not None and now >= clash.started:
            # The holder of the name answered: the newcomer is a duplicate.
            return [Refuse(name, clash.endpoint, clash.incarnation, "name_in_use")]
        return []

    def bye(self, name: str, incarnation: str) -> list[Effect]:
        """The peer said it is stopping."""
        peer = self._peers.get(name)
        if peer is None or peer.incarnation != incarnation:
            return []
        return self._drop(name, "stopped")

    def gossip(self, members: list[Member], now: float) -> list[Effect]:
        """A member list arrived; link to every member we do not know yet."""
        effects: list[Effect] = []
        for name, endpoint, incarnation in members:
            if name == self.me or (name, incarnation) in self._dead:
                continue
            if name in self._peers or name in self._clashes:
                continue
            self._peers[name] = _Peer(endpoint, incarnation, now, up=False, since=now)
            effects.append(Link(name, endpoint, incarnation, hello=True))
        return effects

    def tick(self, now: float) -> list[Effect]:
        """Advance the clock: silent peers go down, stale links and probes end."""
        effects: list[Effect] = []
        for name, peer in list(self._peers.items()):
            silent = now - peer.last_heard
            if peer.up and silent > self.down_after:
                effects += self._drop(name, "timeout")
            elif not peer.up and now - peer.since > 2 * self.down_after:
                del self._peers[name]
                effects.append(Unlink(name, peer.incarnation))
        for name, clash in list(self._clashes.items()):
            if now >= clash.deadline:
                del self._clashes[name]
                if name in self._peers:  # the holder may have timed out just above
                    effects += self._drop(name, "replaced")
                effects += self._accept(name, clash.incarnation, clash.endpoint, now, asked=True)
        return effects

    # ---- internals -----------------------------------------------------
    def _introduce(
        self, name: str, incarnation: str, endpoint: str, now: float, *, asked: bool
    ) -> list[Effect]:
        if name == self.me:
            if incarnation == self.incarnation:
                return []  # we dialled ourselves through a seed
            return [Refuse(name, endpoint, incarnation, "name_in_use")]
        peer = self._peers.get(name)
        if peer is None or peer.incarnation == incarnation:
            return self._accept(name, incarnation, endpoint, now, asked=asked)
        if not peer.up or peer.endpoint == endpoint:
            # A restart: the old incarnation cannot hold the same port any more.
            return self._drop(name, "restarted") + self._accept(
                name, incarnation, endpoint, now, asked=asked
            )
        clash = self._clashes.get(name)
        if clash is None or clash.incarnation != incarnation:
            self._clashes[name] = _Clash(endpoint, incarnation, now + self.down_after, now)
            return [Probe(name)]
        return []

    def _accept(
        self, name: str, incarnation: str, endpoint: str, now: float, *, asked: bool
    ) -> list[Effect]:
        self._dead.pop((name, incarnation), None)
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

    def _drop(self, name: str, reason: str) -> list[Effect]:
        peer = self._peers.pop(name)
        self._dead[(name, peer.incarnation)] = peer.endpoint
        while len(self._dead) > 1024:
            del self._dead[next(iter(self._dead))]
        effects: list[Effect] = [Unlink(name, peer.incarnation)]
        if peer.up:
            effects.append(NodeDown(name, reason))
        return effects
