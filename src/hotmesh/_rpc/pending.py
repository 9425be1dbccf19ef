"""Calls waiting for a reply: ids, target nodes and deadlines (pure, no I/O, no locks)."""

from __future__ import annotations

from typing import Generic, TypeVar

from hotmesh._record import record

W = TypeVar("W")


@record
class Pending(Generic[W]):
    """One call in flight: its id, target, absolute deadline and whoever waits for it."""

    call_id: int
    node: str
    deadline: float
    waiter: W


class PendingCalls(Generic[W]):
    """The calls of one node that wait for a reply.

    Ids are unique per node and never reused. A reply settles one call; a
    node going down settles every call to it; the clock expires calls whose
    deadline passed. Each settled call is returned exactly once.
    """

    def __init__(self) -> None:
        self._next_id = 1
        self._calls: dict[int, Pending[W]] = {}
        self._by_node: dict[str, set[int]] = {}

    def __len__(self) -> int:
        return len(self._calls)

    def add(self, node: str, deadline: float, waiter: W) -> int:
        """Record a call to ``node`` that must be settled by ``deadline``; return its id."""
        call_id = self._next_id
        self._next_id += 1
        self._calls[call_id] = Pending(call_id, node, deadline, waiter)
        self._by_node.setdefault(node, set()).add(call_id)
        return call_id

    def get(self, call_id: int) -> Pending[W] | None:
        """The call ``call_id`` if it still waits, else None."""
        return self._calls.get(call_id)

    def settle(self, call_id: int) -> Pending[W] | None:
        """Remove and return the call ``call_id`` (None if unknown or already settled)."""
        pending = self._calls.pop(call_id, None)
        if pending is not None:
            ids = self._by_node[pending.node]
            ids.discard(call_id)
            if not ids:
                del self._by_node[pending.node]
        return pending

    def node_down(self, node: str) -> list[Pending[W]]:
        """Remove and return every call waiting on ``node``."""
        ids = self._by_node.pop(node, set())
        return [self._calls.pop(call_id) for call_id in sorted(ids)]

    def expire(self, now: float) -> list[Pending[W]]:
        """Remove and return every call whose deadline is at or before ``now``."""
        late = [call_id for call_id, p in self._calls.items() if p.deadline <= now]
        return [p for call_id in late if (p := self.settle(call_id)) is not None]
