"""Runs the membership view on the node's I/O thread: hello/welcome, gossip, heartbeats.

Carries out the view's effects with the transport and tells the node about
nodeup and nodedown. Every method runs on the I/O thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from hotmesh._membership.view import (
    Effect,
    Link,
    Member,
    MembershipView,
    NodeDown,
    NodeUp,
    Probe,
    Refuse,
    Unlink,
    Welcome,
)
from hotmesh._mesh.transport import Transport

log = logging.getLogger("hotmesh.mesh")

KINDS = ("hello", "welcome", "refuse", "hb", "bye")
"""Message types this driver handles."""

_MEMBERS_EVERY = 4  # heartbeats carry the member list once per tick


class MembershipDriver:
    """Joins the mesh through seeds, keeps it full and watches peers with heartbeats.

    Heartbeats go to every up peer every ``tick / 4`` seconds; a peer silent
    for ``0.75 * tick`` is down, so a dead peer is reported within one tick.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        name: str,
        incarnation: str,
        tick: float,
        encode: Callable[[dict[str, Any]], bytes],
        on_up: Callable[[str], None],
        on_down: Callable[[str, str], None],
    ) -> None:
        self.transport = transport
        self.name = name
        self.incarnation = incarnation
        self.interval = tick / 4
        self.view = MembershipView(name, incarnation, down_after=0.75 * tick)
        self._encode = encode
        self._on_up = on_up
        self._on_down = on_down
        self._linked: dict[str, str] = {}  # peer name -> incarnation of its DEALER
        self._seeds: list[str] = []
        self._beats = 0
        self._timer: Any = None
        self.joined = threading.Event()
        self.refusal: str | None = None

    # ---- life cycle (I/O thread) ----------------------------------------
    def start(self, seeds: Iterable[str]) -> None:
        """Say hello to every seed and start the heartbeat timer."""
        for endpoint in seeds:
            key = f"seed:{endpoint}"
            if self.transport.link(key, endpoint):
                self._seeds.append(key)
                self.transport.send(key, self._hello("hello"))
        if not self._seeds:
            self.joined.set()
        self._timer = self.transport.io.loop.call_later(self.interval, self._tick)

    def stop(self) -> None:
        """Stop the timer and say bye to every up peer."""
        if self._timer is not None:
            self._timer.cancel()
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
            if kind == "hello":
                effects = self.view.hello(name, incarnation, endpoint, now)
            else:
                effects = self.view.welcome(name, incarnation, endpoint, now)
            self._apply(effects)
            self._gossip(message.get("members"), now)
        elif kind == "hb":
            self._gossip(message.get("members"), now)
        elif kind == "bye":
            self._apply(self.view.bye(name, incarnation))
        elif kind == "refuse":
            self._refused(name, message)

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

    def _refused(self, name: str, message: dict[str, Any]) -> None:
        text = str(message.get("msg") or f"refused by {name}")
        if self.joined.is_set():
            log.error("%s refused this node after it joined: %s", name, text)
            return
        self.refusal = text
        self.joined.set()

    def _tick(self) -> None:
        self._beats += 1
        beat: dict[str, Any] = {"t": "hb"}
        if self._beats % _MEMBERS_EVERY == 0:
            beat["members"] = self.view.members(self.transport.endpoint)
        data = self._encode(beat)
        for name in self.view.up():
            self.transport.send(name, data)
        self._apply(self.view.tick(time.monotonic()))
        self._timer = self.transport.io.loop.call_later(self.interval, self._tick)

    def _hello(self, kind: str) -> bytes:
        return self._encode(
            {
                "t": kind,
                "node": self.name,
                "inc": self.incarnation,
                "ep": self.transport.endpoint,
                "members": self.view.members(self.transport.endpoint),
            }
        )

    def _apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            match effect:
                case Link():
                    self._link(effect)
                case Welcome(name):
                    self.transport.send(name, self._hello("welcome"))
                case Refuse(name, endpoint, _, reason):
                    log.warning("refused %s at %s: the name is in use", name, endpoint)
                    text = f"a node named {name} is already in the mesh ({reason})"
                    self.transport.send_once(
                        endpoint, self._encode({"t": "refuse", "reason": reason, "msg": text})
                    )
                case Probe(name):
                    self.transport.send(name, self._encode({"t": "ping"}))
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

    def _link(self, link: Link) -> None:
        current = self._linked.get(link.name)
        if current != link.incarnation:
            if current is not None:
                self.transport.unlink(link.name)
            self.transport.link(link.name, link.endpoint)
            self._linked[link.name] = link.incarnation
        if link.hello:
            self.transport.send(link.name, self._hello("hello"))

    def _joined(self) -> None:
        if self.joined.is_set():
            return
        self.joined.set()
        for key in self._seeds:
            self.transport.unlink(key)
        self._seeds.clear()
