"""Runs the membership view on the node's I/O thread: seeds, hello/welcome, gossip, heartbeats.

Carries out the view's effects with the transport and tells the node about
nodeup and nodedown. Every method runs on the I/O thread.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from hotmesh._hashes import blake2b
from hotmesh._membership.seeds import Seed, SeedSource
from hotmesh._membership.view import (
    Effect,
    Hail,
    Link,
    Member,
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
from hotmesh._mesh.transport import Transport, peer_identity
from hotmesh._record import record
from hotmesh._tick import Tick

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

log = logging.getLogger("hotmesh.mesh")

KINDS = ("hello", "welcome", "refuse", "hb", "bye")
"""Message types this driver handles."""

_NAME_REFUSALS = ("name_in_use", "name_conflict")
_SEQUENCES = (list, tuple)


@record
class _Seed:
    """One seed endpoint: dialled with backoff until some node answers through it."""

    key: str
    delay: float
    next_try: float = 0.0
    answered_by: str | None = None  # node name that welcomed us through it ("" = us)
    refused: bool = False  # the node there failed our CURVE handshake since we last joined


def pinger(a: str, b: str) -> str:
    """Which of two nodes pings the other: either may ask, both get the same answer,
    and each node pings about half of its peers."""
    first, second = sorted((a, b))
    flip = blake2b(f"{first}\0{second}".encode(), digest_size=1).digest()[0] & 1
    return second if flip else first


class MembershipDriver:
    """Joins the mesh through seeds, keeps it full and watches peers with heartbeats.

    Seeds are dialled (a hello through a connection of their own) until a node
    answers through each one, retried with exponential backoff and jitter, and
    dialled again every ``reseed_every`` seconds once joined when nobody up
    answers for them. A peer is down when the transport reports its link
    closed: at once when its process dies, within 1.25 tick when it falls
    silent. Of each pair of nodes one pings the other (libzmq's heartbeats,
    on its link: ``pinger``), which tells it of the other's silence; the
    other learns of the pinger's from its link to us, which then brings
    nothing (``Transport.watch_quiet``). Once a tick the member lists are compared
    with one random peer. Peers that went down are redialled by the view. The
    timer runs every quarter tick while anything waits on it, else once a tick.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        name: str,
        incarnation: str,
        tick: float | Tick,
        encode: Callable[[dict[str, Any]], bytes],
        on_up: Callable[[str], None],
        on_down: Callable[[str, str], None],
        rng: random.Random | None = None,
    ) -> None:
        self.transport = transport
        self.name = name
        self.incarnation = incarnation
        self.timing = tick if isinstance(tick, Tick) else Tick(tick)
        self.interval = self.timing.heartbeat
        self._rng = rng or random.Random()
        self.view = MembershipView(
            name,
            incarnation,
            down_after=self.timing.down_after,
            dial_timeout=self.timing.dial_timeout,
            redial_min=self.timing.redial_min,
            redial_max=self.timing.redial_max,
            connect_within=self.timing.connect_within,
            # Silence is libzmq's to judge (ZMTP heartbeats close the link and
            # the transport reports it): a node whose Python is stalled in C
            # holding the GIL still answers those, and is not down.
            silence_kills=False,
            rng=self._rng,
        )
        self._encode = encode
        self._on_up = on_up
        self._on_down = on_down
        self._linked: dict[str, str] = {}  # peer name -> incarnation of its DEALER
        self._source = SeedSource(())
        self._resolver: ThreadPoolExecutor | None = None
        self._resolving: Future[list[str]] | None = None
        self._seeds: dict[str, _Seed] = {}  # endpoint -> dial state
        self._next_resolve = 0.0
        self._met = False  # some peer came up, or every seed is this node
        self._next_check = 0.0  # when to compare member lists with a random peer next
        self._timer: Any = None
        self._logged: set[tuple[str, str]] = set()
        # Hellos encoded during one _apply: the member list does not change while
        # the effects of one event run, and a welcome naming 60 members gives 60
        # Links that each say hello (kind, via) -> frame.
        self._hellos: dict[tuple[str, str | None], bytes] | None = None
        self.joined = threading.Event()
        self.refusal: str | None = None
        self.conflict: str | None = None

    # ---- life cycle (I/O thread) ----------------------------------------
    def start(self, seeds: SeedSource | Iterable[Seed]) -> None:
        """Dial the seeds and start the membership timer.

        The seed source is asked every quarter tick until some peer is up, and
        every ``reseed_every`` seconds after; providers (DNS, files, callables)
        are asked on a thread of their own, never on the I/O thread.
        """
        self._source = seeds if isinstance(seeds, SeedSource) else SeedSource(seeds)
        if self._source.dynamic:
            from concurrent.futures import ThreadPoolExecutor  # only providers need it

            self._resolver = ThreadPoolExecutor(1, thread_name_prefix="hotmesh-seeds")
        self._reseed(time.monotonic())
        if not self._source.dynamic and not self._seeds:
            self.joined.set()
        self._timer = self.transport.io.loop.call_later(self.interval, self._tick)

    def stop(self) -> None:
        """Stop the timer and the seed resolver, and say bye to every up peer."""
        if self._timer is not None:
            self._timer.cancel()
        if self._resolver is not None:
            self._resolver.shutdown(wait=False, cancel_futures=True)
        for seed in self._seeds.values():
            self.transport.unlink(seed.key)
        bye = self._encode({"t": "bye"})
        for name in self.view.up():
            self.transport.send(name, bye)

    # ---- incoming (I/O thread) ------------------------------------------
    def traffic(self, name: str, incarnation: str) -> None:
        """Any message from a peer proves it alive."""
        self._apply(self.view.heard_from(name, incarnation, time.monotonic()))

    def handle(self, name: str, incarnation: str, message: dict[str, Any]) -> None:
        """A membership message from peer ``name`` (already counted as traffic)."""
        kind = message["t"]
        now = time.monotonic()
        if kind in ("hello", "welcome"):
            endpoint = message.get("ep")
            if message.get("node") != name or message.get("inc") != incarnation:
                log.warning("dropped a %s whose names do not match its sender %s", kind, name)
                return
            if not isinstance(endpoint, str):
                return
            via = message.get("via")
            via = via if isinstance(via, str) else None
            if kind == "hello":
                effects = self.view.hello(name, incarnation, endpoint, now)
                if name == self.name and incarnation == self.incarnation and via:
                    self._answered(via, "")  # a seed that is this very node
            else:
                effects = self.view.welcome(name, incarnation, endpoint, now)
                if via and self.view.is_up(name):
                    self._answered(via, name)
            self._apply(effects, via=via if kind == "hello" else None)
            self._gossip(message.get("members"), now)
        elif kind == "hb":
            self._gossip(message.get("members"), now)
            digest = message.get("d")
            if isinstance(digest, str) and digest != self._digest():
                # Our views differ: send ours, and ask for theirs (asked once:
                # a list is never answered with a question).
                self._send_members(name, ask=True)
            elif message.get("ask") and message.get("members") is not None:
                self._send_members(name, ask=False)
        elif kind == "bye":
            self._apply(self.view.bye(name, incarnation, now))
        elif kind == "refuse":
            self._refused(name, message, now)

    def disconnected(self, name: str, incarnation: str, why: str = "connection closed") -> None:
        """Our connection to a peer incarnation closed (its process died, or silence)."""
        self._apply(self.view.disconnected(name, incarnation, time.monotonic(), why))

    # ---- internals -------------------------------------------------------
    def _gossip(self, members: Any, now: float) -> None:
        if not isinstance(members, _SEQUENCES):
            return
        # Exact types: a decoded frame holds only plain str, list and tuple. Every
        # hello and welcome carries the whole list: this runs N times per node
        # while N nodes meet, over N members each.
        clean: list[Member] = [
            (m[0], m[1], m[2])
            for m in members
            if type(m) in _SEQUENCES
            and len(m) == 3
            and type(m[0]) is str
            and type(m[1]) is str
            and type(m[2]) is str
        ]
        self._apply(self.view.gossip(clean, now))

    def _refused(self, name: str, message: dict[str, Any], now: float) -> None:
        text = str(message.get("msg") or f"refused by {name}")
        if not self.joined.is_set():
            self.refusal = text
            self.joined.set()
            return
        keeper = message.get("keeper")
        if message.get("reason") not in _NAME_REFUSALS or self.view.renounced:
            return
        if not isinstance(keeper, str) or not older(keeper, self.incarnation):
            # Only an older run of our name may take it from us.
            log.warning("%s: ignored a refusal from %s: %s", self.name, name, text)
            return
        self._renounce(text)
        self._apply(self.view.renounce(now))

    def _renounce(self, text: str) -> None:
        self.conflict = text
        log.error(
            "%s leaves the mesh: %s; this run is the newer one. Stop it, or restart it "
            "under another name",
            self.name,
            text,
        )
        for seed in self._seeds.values():
            self.transport.unlink(seed.key)
        bye = self._encode({"t": "bye"})
        for name in self._linked:
            self.transport.send(name, bye)

    def _tick(self) -> None:
        now = time.monotonic()
        up = self.view.up()
        if up and now >= self._next_check:
            # Anti-entropy: once a tick, compare member lists with one random
            # peer (a digest; the lists travel only when they differ), so the
            # membership traffic of a node does not grow with the mesh.
            self._next_check = now + self.timing.seconds - self.interval / 2
            peer = self._rng.choice(up)
            self.transport.send(peer, self._encode({"t": "hb", "d": self._digest()}))
        self._apply(self.view.tick(now))
        self._unconnected(now)
        if not self.view.renounced:
            if now >= self._next_resolve:
                self._reseed(now)
            self._dial_seeds(now)
        self._timer = self.transport.io.loop.call_later(self._next_delay(now), self._tick)

    def _unconnected(self, now: float) -> None:
        """Peers whose links have no connection: their traffic is noted, and those
        unconnected for ``connect_within`` and silent as long are down."""
        linked = self._linked
        waiting = [name for name in self.transport.unconnected(0.0) if name in linked]
        if waiting or self.view.listening():
            self.view.listen_to(waiting)
        late = self.transport.unconnected(self.timing.connect_within)
        if late:
            links = [(name, linked[name]) for name in late if name in linked]
            self._apply(self.view.never_connected(links, now))

    def _next_delay(self, now: float) -> float:
        """A quarter tick while anything waits on the clock (dials, redials, seeds,
        links not connected yet); once all is settled, only the next member check
        or seed round: an idle node wakes once a tick, whatever the mesh's size."""
        if (
            not self.view.is_settled()
            or not self.transport.all_connected()
            or any(seed.answered_by is None for seed in self._seeds.values())
            or self._resolving is not None
        ):
            return self.interval
        return max(self.interval, min(self._next_check, self._next_resolve) - now)

    def _hurry(self) -> None:
        """Bring the timer forward to a quarter tick from now (something now waits on it)."""
        timer = self._timer
        if (
            timer is not None
            and not timer.cancelled
            and timer.when > time.monotonic() + self.interval
        ):
            timer.cancel()
            self._timer = self.transport.io.loop.call_later(self.interval, self._tick)

    # ---- seeds -----------------------------------------------------------
    def _reseed(self, now: float) -> None:
        """Ask the seed source again (providers on the resolver thread)."""
        self._next_resolve = now + (self.timing.reseed_every if self._met else self.interval)
        if self._resolver is None:
            self._use_seeds(self._source.resolve())
        elif self._resolving is None:
            self._resolving = self._resolver.submit(self._source.resolve)
            self._resolving.add_done_callback(self._resolved)

    def _resolved(self, future: Future[list[str]]) -> None:
        # On the resolver thread: hand the endpoints to the I/O thread.
        if not future.cancelled() and future.exception() is None:
            self.transport.io.submit(self._use_seeds, future.result(), future)
        else:
            self.transport.io.submit(self._use_seeds, None, future)

    def _use_seeds(self, endpoints: list[str] | None, future: object = None) -> None:
        """Dial new seed endpoints, forget vanished ones (I/O thread)."""
        if future is not None and future is self._resolving:
            self._resolving = None
        if endpoints is None or self.view.renounced:
            return
        now = time.monotonic()
        joined = self._met
        wanted = [e for e in dict.fromkeys(endpoints) if e != self.transport.endpoint]
        if not wanted and self._source.dynamic and not self.joined.is_set():
            # Nobody else yet (the first worker of a host, the first pod):
            # start() need not wait; the source is still asked every quarter tick.
            self.joined.set()
        for endpoint in list(self._seeds):
            if endpoint not in wanted:
                self.transport.unlink(self._seeds.pop(endpoint).key)
        for endpoint in wanted:
            seed = self._seeds.get(endpoint)
            if seed is None:
                self._seeds[endpoint] = _Seed(f"seed:{endpoint}", self.timing.redial_min)
            elif joined and not self._serves(seed):
                # Once joined, a seed no up node answers for is dialled again
                # (a partition healed, a restarted seed on a new address).
                seed.answered_by = None
                seed.delay = self.timing.redial_min
                seed.next_try = now
        self._dial_seeds(now)
        if any(seed.answered_by is None for seed in self._seeds.values()):
            self._hurry()

    def _serves(self, seed: _Seed) -> bool:
        who = seed.answered_by
        return who is not None and (who == "" or self.view.is_up(who))

    def _dial_seeds(self, now: float) -> None:
        for endpoint, seed in self._seeds.items():
            if seed.answered_by is not None or now < seed.next_try:
                continue
            # A fresh connection each time: a hello queued behind a dead
            # connection attempt would wait for the kernel's SYN retries.
            self.transport.unlink(seed.key)
            self.transport.link(
                seed.key,
                endpoint,
                identity=self.transport.seed_identity,
                on_refused=functools.partial(self._seed_refused, endpoint),
            )
            self.transport.send(seed.key, self._hello("hello", via=endpoint))
            seed.next_try = now + seed.delay * self._rng.uniform(0.75, 1.25)
            seed.delay = min(2 * seed.delay, self.timing.redial_max)

    def _seed_refused(self, endpoint: str) -> None:
        """Something answers at a seed but fails our CURVE handshake: say so, once
        until the seed answers (I/O thread)."""
        seed = self._seeds.get(endpoint)
        if seed is None or seed.answered_by is not None or seed.refused:
            return
        seed.refused = True
        log.warning(
            "%s: the seed %s refused our CURVE handshake: the node there runs with "
            "another cluster cookie, or it is not a hotmesh node; still trying",
            self.name,
            endpoint,
        )

    def refused_seeds(self) -> list[str]:
        """Seeds not answered yet whose node failed our handshake (another cookie?)."""
        return [e for e, seed in self._seeds.items() if seed.refused and seed.answered_by is None]

    def _answered(self, endpoint: str, by: str) -> None:
        seed = self._seeds.get(endpoint)
        if seed is None or seed.answered_by is not None:
            return
        seed.answered_by = by
        seed.refused = False
        seed.delay = self.timing.redial_min
        self.transport.unlink(seed.key)
        if by == "" and all(s.answered_by == "" for s in self._seeds.values()):
            self._met = True
            self.joined.set()  # every seed is this node: it starts the mesh

    def _digest(self) -> str:
        """A short hash of who is up (names and incarnations, this node included)."""
        members = sorted((m[0], m[2]) for m in self.view.members(""))
        return blake2b(repr(members).encode(), digest_size=8).hexdigest()

    def _members(self) -> list[list[str]]:
        """The gossip list as lists (plain msgpack arrays: tuples would travel
        with a marker each, several times dearer to pack and unpack)."""
        return [[n, e, i] for n, e, i in self.view.members(self.transport.endpoint)]

    def _send_members(self, name: str, *, ask: bool) -> None:
        message: dict[str, Any] = {"t": "hb", "members": self._members()}
        if ask:
            message["ask"] = True
        self.transport.send(name, self._encode(message))

    # ---- effects ---------------------------------------------------------
    def _hello(self, kind: str, via: str | None = None) -> bytes:
        cache = self._hellos
        frame = cache.get((kind, via)) if cache is not None else None
        if frame is not None:
            return frame
        message: dict[str, Any] = {
            "t": kind,
            "node": self.name,
            "inc": self.incarnation,
            "ep": self.transport.endpoint,
            "members": self._members(),
        }
        if via:
            message["via"] = via
        frame = self._encode(message)
        if cache is not None:
            cache[kind, via] = frame
        return frame

    def _apply(self, effects: list[Effect], via: str | None = None) -> None:
        if not effects:
            return
        self._hurry()
        outer = self._hellos is None
        if self._hellos is None:
            self._hellos = {}
        else:
            # Effects of a nested event (a link that closed at once): the view
            # changed, so the member list may have.
            self._hellos.clear()
        try:
            self._run_effects(effects, via)
        finally:
            if outer:
                self._hellos = None

    def _run_effects(self, effects: list[Effect], via: str | None) -> None:
        for effect in effects:
            match effect:
                case Link():
                    self._link(effect)
                case Welcome(name):
                    self.transport.send(name, self._hello("welcome", via=via))
                case Refuse(name, endpoint, incarnation, reason):
                    self._refuse(name, endpoint, incarnation, reason)
                case Probe(name):
                    self.transport.send(name, self._encode({"t": "ping"}))
                case Hail(endpoint):
                    self.transport.send_once(endpoint, self._hello("hello"))
                case Renounce(endpoint, incarnation):
                    self._renounce(f"an older run of {self.name} ({incarnation}) is at {endpoint}")
                case Unlink(name, incarnation):
                    if self._linked.get(name) == incarnation:
                        del self._linked[name]
                        self.transport.unlink(name)  # and its watch
                case NodeUp(name):
                    self._joined()
                    log.info("nodeup %s", name)
                    self._on_up(name)
                case NodeDown(name, reason):
                    log.info("nodedown %s (%s)", name, reason)
                    self._on_down(name, reason)

    def _refuse(self, name: str, endpoint: str, incarnation: str, reason: str) -> None:
        if reason == "name_conflict":
            text = (
                f"the name {name} belongs to an older run in the mesh "
                f"({self.view.incarnation_of(name)} at {self.view.endpoint_of(name)})"
            )
        else:
            text = f"a node named {name} is already in the mesh ({reason})"
        if (name, incarnation) not in self._logged:
            if len(self._logged) > 1024:
                self._logged.clear()
            self._logged.add((name, incarnation))
            log.warning("refused %s (%s) at %s: %s", name, incarnation, endpoint, text)
        keeper = self.incarnation if name == self.name else self.view.incarnation_of(name)
        message = {"t": "refuse", "reason": reason, "msg": text, "keeper": keeper}
        self.transport.send_once(endpoint, self._encode(message))

    def _link(self, link: Link) -> None:
        current = self._linked.get(link.name)
        marker = False
        if current != link.incarnation or link.fresh:
            if current is not None:
                self.transport.unlink(link.name)
            name, incarnation = link.name, link.incarnation
            pings = self._pings(name)
            self.transport.link(
                name,
                link.endpoint,
                on_closed=lambda why: self.disconnected(name, incarnation, why),
                pings=pings,
            )
            if not pings:
                self.transport.watch_quiet(
                    name,
                    peer_identity(name, incarnation),
                    lambda: self.disconnected(name, incarnation, "silent"),
                )
            self._linked[link.name] = link.incarnation
            # The peer watches our link from the first frame it brings.
            marker = pings and not link.hello
        if link.hello:
            self.transport.send(link.name, self._hello("hello"))
        elif marker:
            self.transport.send(link.name, self._encode({"t": "hb"}))

    def _pings(self, name: str) -> bool:
        """Whether our link to peer ``name`` pings: when we are the pair's pinger, or
        cannot watch its link to us (not Linux, or not TCP), so that it pings too."""
        return pinger(self.name, name) == self.name or not self.transport.can_watch_quiet

    def _joined(self) -> None:
        self._met = True
        if not self.joined.is_set():
            self.joined.set()
