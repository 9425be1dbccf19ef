"""Rollout plans: pure functions from the nodes to upgrade to the batches to
upgrade them in (``batches(n)``, ``canary(first, then)``, ``all_at_once()``).
No I/O; ``rolling_upgrade(..., plan=...)`` runs whatever plan it is given.

A plan is any function ``(nodes) -> list[Batch]``: a by-zone or by-share plan
is a few lines of your own, tested without a mesh.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Batch:
    """The nodes upgraded together in one step of a rolling upgrade."""

    index: int
    nodes: tuple[str, ...]


Plan = Callable[[Sequence[str]], list[Batch]]
"""Nodes in rollout order -> the batches, in order (each node exactly once)."""


def batches(size: int) -> Plan:
    """Batches of ``size`` nodes in the given order: ``batches(1)`` is one at a time.

    Raises:
        ValueError: ``size`` is not a positive integer.
    """
    _check_size("batch", size)

    def plan(nodes: Sequence[str]) -> list[Batch]:
        names = checked(nodes)
        return _numbered([names[i : i + size] for i in range(0, len(names), size)])

    plan.__qualname__ = f"batches({size})"
    return plan


def canary(first: int = 1, then: int | None = None) -> Plan:
    """``first`` nodes alone (the canary), then the rest ``then`` at a time (all at once if None).

    With a ``check``, the rollout stops after the canary when its check fails.

    Raises:
        ValueError: ``first`` or ``then`` is not a positive integer.
    """
    _check_size("first", first)
    if then is not None:
        _check_size("then", then)

    def plan(nodes: Sequence[str]) -> list[Batch]:
        names = checked(nodes)
        head, rest = names[:first], names[first:]
        step = then or max(1, len(rest))
        return _numbered([head] + [rest[i : i + step] for i in range(0, len(rest), step)])

    plan.__qualname__ = f"canary({first}, {then})"
    return plan


def all_at_once() -> Plan:
    """Every node in one batch."""

    def plan(nodes: Sequence[str]) -> list[Batch]:
        return _numbered([checked(nodes)])

    plan.__qualname__ = "all_at_once()"
    return plan


def checked(nodes: Sequence[str]) -> list[str]:
    """``nodes`` as a list, refusing a bare string and repeated names.

    Raises:
        ValueError: ``nodes`` is a string, or a node appears twice.
    """
    if isinstance(nodes, str):
        raise ValueError(f"nodes must be a list of node names, not the string {nodes!r}")
    names = list(nodes)
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"node {name} appears twice in the rollout")
        seen.add(name)
    return names


def _numbered(groups: list[list[str]]) -> list[Batch]:
    return [Batch(i + 1, tuple(group)) for i, group in enumerate(g for g in groups if g)]


def _check_size(what: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive integer, not {value!r}")
