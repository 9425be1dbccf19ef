"""Runs the membership view on the node's I/O thread: seeds, hello/welcome, gossip, heartbeats.

Carries out the view's effects with the transport and tells the node about
nodeup and nodedown. Every method runs on the I/O thread.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

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
from hotmesh._mesh.transport import Transport
from hotmesh._tick import Tick

log = logging.getLogger("hotmesh.mesh")

KINDS = ("hello", "welcome", "refuse", "hb", "bye")
"""Message types this driver handles."""

_NAME_REFUSALS = ("name_in_use", "name_conflict")


@dataclass
class _Seed:
    """One seed endpoint: dialled with backoff until some node answers through it."""

    key: str
    delay: float
    next_try: float = 0.0
    answered_by: str | None = None  # node name that welcomed us through it ("" = us)


class MembershipDriver:
    """Joins the mesh through seeds, keeps it full and watches peers with heartbeats.

    Seeds are dialled (a hello through a connection of their own) until a node
    answers through each one, retried with exponential backoff and jitter, and
    dialled again every ``reseed_every`` seconds once joined when nobody up
    answers for them. Heartbeats go to every up peer every ``tick / 4``
    seconds; a peer silent for ``0.75 * tick`` is down, so a dead peer is
    reported within one tick. Peers that went down are redialled by the view.
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
            rng=self._rng,
        )
        self._encode = encode
        self._on_up = on_up
        self._on_down = on_down
        self._linked: dict[str, str] = {}  # peer name -> incarnation of its DEALER
        self._resolve: Callable[[], Iterable[str]] = tuple
        self._seeds: dict[str, _Seed] = {}  # endpoint -> dial state
        self._next_resolve = 0.0
        self._beats = 0
        self._timer: Any = None
        self._logged: set[tuple[str, str]] = set()
        self.joined = threading.Event()
        self.refusal: str | None = None
        self.conflict: str | None = None

    # ---- life cycle (I/O thread) ----------------------------------------
    def start(self, seeds: Iterable[str] | Callable[[], Iterable[str]]) -> None:
        """Dial the seeds and start the membership timer.

        ``seeds`` is a list of endpoints or a function returning them, asked
        each tick until joined and every ``reseed_every`` seconds after.
        """
        if callable(seeds):
            self._resolve = seeds
        else:
            fixed = tuple(seeds)
            self._resolve = lambda: fixed
        now = time.monotonic()
        self._reseed(now)
        if not self._seeds:
            self.joined.set()
        self._timer = self.transport.io.loop.call_later(self.interval, self._tick)

    def stop(self) -> None:
        """Stop the timer and say bye to every up peer."""
        if self._timer is not None:
            self._timer.cancel()
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
        elif kind == "bye":
            self._apply(self.view.bye(name, incarnation, now))
        elif kind == "refuse":
            self._refused(name, message, now)

    def disconnected(self, name: str, incarnation: str) -> None:
        """Our connection to a peer incarnation closed (its process died, or silence)."""
        self._apply(self.view.disconnected(name, incarnation, time.monotonic()))

    # ---- internals -------------------------------------------------------
    def _gossip(self, members: Any, now: float) -> None:
        if not isinstance(members, (list, tuple)):
            return
        clean: list[Member] = [
            (m[0], m[1], m[2])
            for m in members
            if isinstance(m, (list, tuple)) and len(m) == 3 and all(isinstance(x, str) for x in m)
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
        self._beats += 1
        now = time.monotonic()
        beat: dict[str, Any] = {"t": "hb"}
        if self._beats % self.timing.members_every == 0:
            beat["members"] = self.view.members(self.transport.endpoint)
        data = self._encode(beat)
        for name in self.view.up():
            self.transport.send(name, data)
        self._apply(self.view.tick(now))
        if not self.view.renounced:
            if now >= self._next_resolve:
                self._reseed(now)
            self._dial_seeds(now)
        self._timer = self.transport.io.loop.call_later(self.interval, self._tick)

    # ---- seeds -----------------------------------------------------------
    def _reseed(self, now: float) -> None:
        """Ask the seed source again; dial new endpoints, forget vanished ones."""
        joined = self.joined.is_set()
        self._next_resolve = now + (self.timing.reseed_every if joined else self.interval)
        try:
            endpoints = [str(e) for e in self._resolve() if e]
        except Exception as exc:  # a provider's failure must not stop the node
            log.warning("%s: the seed source failed: %s", self.name, exc)
            return
        wanted = [e for e in dict.fromkeys(endpoints) if e != self.transport.endpoint]
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
            self.transport.link(seed.key, endpoint, identity=self.transport.seed_identity)
            self.transport.send(seed.key, self._hello("hello", via=endpoint))
            seed.next_try = now + seed.delay * self._rng.uniform(0.75, 1.25)
            seed.delay = min(2 * seed.delay, self.timing.redial_max)

    def _answered(self, endpoint: str, by: str) -> None:
        seed = self._seeds.get(endpoint)
        if seed is None or seed.answered_by is not None:
            return
        seed.answered_by = by
        seed.delay = self.timing.redial_min
        self.transport.unlink(seed.key)
        if by == "" and all(s.answered_by == "" for s in self._seeds.values()):
            self.joined.set()  # every seed is this node: it starts the mesh

    # ---- effects ---------------------------------------------------------
    def _hello(self, kind: str, via: str | None = None) -> bytes:
        message: dict[str, Any] = {
            "t": kind,
            "node": self.name,
            "inc": self.incarnation,
            "ep": self.transport.endpoint,
            "members": self.view.members(self.transport.endpoint),
        }
        if via:
            message["via"] = via
        return self._encode(message)

    def _apply(self, effects: list[Effect], via: str | None = None) -> None:
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
                        self.transport.unlink(name)
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
        if current != link.incarnation or link.fresh:
            if current is not None:
                self.transport.unlink(link.name)
            self.transport.link(link.name, link.endpoint)
            self._linked[link.name] = link.incarnation
        if link.hello:
            self.transport.send(link.name, self._hello("hello"))

    def _joined(self) -> None:
        if not self.joined.is_set():
            self.joined.set()
