"""Running one function on several nodes (this one in-process, the others over
the mesh) and collecting a result or a reason per node, never raising for one
node's failure. Network I/O through the node's calls; used by the deploy
toolkit (versions, rollout, airbag) and settings."""

from __future__ import annotations

import contextvars
import importlib
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from hotmesh._errors import HotmeshError, NodeDown, RemoteError, TransportError
from hotmesh._record import record
from hotmesh._runtime import NodeLike, current_node

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor


@record(frozen=True)
class Unreachable:
    """A node that did not answer: ``reason`` says why (down, timeout, error)."""

    reason: str

    def __repr__(self) -> str:
        return f"Unreachable({self.reason!r})"

    def __str__(self) -> str:
        return f"unreachable: {self.reason}"


def this_node() -> NodeLike:
    """The node running in this process (raises HotmeshError when none runs)."""
    return current_node()


def resolve_targets(
    nodes: str | Iterable[str] | None, *, node: NodeLike | None = None
) -> list[str]:
    """Node names for ``nodes``: None is this node, ``"all"`` this node and its peers.

    Raises:
        ValueError: ``nodes`` is another string (a single name must be in a list).
    """
    node = node if node is not None else this_node()
    if nodes is None:
        return [node.name]
    if isinstance(nodes, str):
        if nodes != "all":
            raise ValueError(f"nodes must be None, 'all' or a list of names, not {nodes!r}")
        return [node.name, *sorted(n for n in node.nodes() if n != node.name)]
    targets: list[str] = []
    for name in nodes:
        if name not in targets:
            targets.append(name)
    return targets


def call_local(fn: str | Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` (a function or a ``"pkg.mod.func"`` path) in this process."""
    if isinstance(fn, str):
        module, _, attr = fn.rpartition(".")
        found: Callable[..., Any] = getattr(importlib.import_module(module), attr)
        return found(*args, **kwargs)
    return fn(*args, **kwargs)


def reason_of(exc: BaseException) -> str:
    """A one-line reason for a failed call (the remote message, not its traceback)."""
    if isinstance(exc, RemoteError):
        return f"{exc.exc_type}: {exc.message}"
    if isinstance(exc, HotmeshError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def is_unreachable(exc: BaseException) -> bool:
    """True when ``exc`` means the node did not answer (down, timeout, transport)."""
    return isinstance(exc, TransportError | NodeDown | TimeoutError)


def fan_out_pool(workers: int, name: str) -> ThreadPoolExecutor:
    """A pool of ``workers`` threads for calls to many nodes, each about once.

    Its threads call on the node's shared path, without a line of their own
    per peer (``hotmesh._mesh.lines.call_each_peer_once``).
    """
    from concurrent.futures import ThreadPoolExecutor  # imported when first run, not at start

    from hotmesh._mesh.lines import call_each_peer_once

    return ThreadPoolExecutor(workers, thread_name_prefix=name, initializer=call_each_peer_once)


def submit(
    pool: ThreadPoolExecutor,
    target: str,
    fn: str | Callable[..., Any],
    args: Sequence[Any],
    *,
    node: NodeLike,
    timeout: float,
    kwargs: dict[str, Any] | None = None,
) -> Future[Any]:
    """Start ``fn(*args, **kwargs)`` on ``target`` in ``pool``; this node runs it in-process."""
    kwargs = kwargs or {}
    if target == node.name:
        # The caller's context carries which node this is (several may share a process).
        return pool.submit(contextvars.copy_context().run, call_local, fn, *args, **kwargs)
    return pool.submit(node.call, target, fn, *args, timeout=timeout, **kwargs)


def run_on(
    targets: Sequence[str],
    fn: str | Callable[..., Any],
    *args: Any,
    timeout: float = 10.0,
    node: NodeLike | None = None,
    kwargs: dict[str, Any] | None = None,
) -> dict[str, tuple[bool, Any]]:
    """Run ``fn(*args, **kwargs)`` on every target at once; ``{node: (ok, value or exception)}``.

    Never raises for a node's failure: each failure is returned as
    ``(False, exception)``, in the order of ``targets``.
    """
    node = node if node is not None else this_node()
    if not targets:
        return {}
    with fan_out_pool(min(32, len(targets)), "hotmesh-fanout") as pool:
        futures = {
            t: submit(pool, t, fn, args, node=node, timeout=timeout, kwargs=kwargs) for t in targets
        }
        outcome: dict[str, tuple[bool, Any]] = {}
        for target, future in futures.items():
            try:
                outcome[target] = (True, future.result())
            except Exception as exc:
                outcome[target] = (False, exc)
    return outcome
