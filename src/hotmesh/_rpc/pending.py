"""Calls waiting for a reply: ids, target nodes and deadlines (pure, no I/O, no locks)."""

from __future__ import annotations

from collections.abc import Sequence
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
    """The calls of one node that wait for a reply, each known by its target and id.

    Ids are never reused. A call has one id; a multicall has one id for all
    its targets (its message is encoded once), so a call is known by
    ``(node, id)``. A reply settles one call; a node going down settles every
    call to it; the clock expires calls whose deadline passed. Each settled
    call is returned exactly once.
    """

    def __init__(self) -> None:
        self._next_id = 1
        self._calls: dict[tuple[str, int], Pending[W]] = {}
        self._by_node: dict[str, set[int]] = {}

    def __len__(self) -> int:
        return len(self._calls)

    def add(self, node: str, deadline: float, waiter: W) -> int:
        """Record a call to ``node`` that must be settled by ``deadline``; return its id."""
        return self.add_each((node,), deadline, (waiter,))

    def add_each(self, nodes: Sequence[str], deadline: float, waiters: Sequence[W]) -> int:
        """Record one call to each of ``nodes`` (distinct), all with the same new id; return it.

        ``waiters[i]`` waits for the call to ``nodes[i]``.
        """
        call_id = self._next_id
        self._next_id += 1
        calls, by_node = self._calls, self._by_node
        for node, waiter in zip(nodes, waiters, strict=True):
            calls[node, call_id] = Pending(call_id, node, deadline, waiter)
            ids = by_node.get(node)
            if ids is None:
                by_node[node] = {call_id}
            else:
                ids.add(call_id)
        return call_id

    def get(self, node: str, call_id: int) -> Pending[W] | None:
        """The call ``call_id`` to ``node`` if it still waits, else None."""
        return self._calls.get((node, call_id))

    def settle(self, node: str, call_id: int) -> Pending[W] | None:
        """Remove and return the call ``call_id`` to ``node`` (None if unknown or settled)."""
        pending = self._calls.pop((node, call_id), None)
        if pending is not None:
            ids = self._by_node[node]
            ids.discard(call_id)
            if not ids:
                del self._by_node[node]
        return pending

    def node_down(self, node: str) -> list[Pending[W]]:
        """Remove and return every call waiting on ``node``, oldest first."""
        ids = self._by_node.pop(node, set())
        return [self._calls.pop((node, call_id)) for call_id in sorted(ids)]

    def expire(self, now: float) -> list[Pending[W]]:
        """Remove and return every call whose deadline is at or before ``now``."""
        late = [key for key, p in self._calls.items() if p.deadline <= now]
        return [p for node, call_id in late if (p := self.settle(node, call_id)) is not None]
