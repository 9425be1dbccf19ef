"""The helpers a console session's namespace starts with (node(), nodes(),
call, cast, multicall, code, versions(), spawn(), log_here(), help_hotmesh());
no I/O."""

from __future__ import annotations

import builtins
import contextvars
import logging
import threading
from collections.abc import Callable
from typing import Any

from hotmesh._console.activity import Activities, Stack, activities, stack_of
from hotmesh._console.output import Outbox
from hotmesh._console.routing import current_route
from hotmesh._errors import ConsoleError
from hotmesh._runtime import NodeLike, current_node

# Helpers carry this attribute so code shipping leaves them behind: the
# target node's session namespace has its own.
HELPER_MARK = "_hotmesh_helper"

_HELP = """\
hotmesh console helpers (this namespace is yours alone; others attached here have their own):
  node()                      this node (a proxy: node().name, node().state_dir, ...)
  nodes()                     names of the connected peers
  call(node, fn, *args, timeout=...)       run fn on node; fn is a dotted path or a
                                           function defined here (its source travels)
  cast(node, fn, *args)       the same, without waiting for a reply
  multicall(nodes, fn, *args, timeout=...) -> (results per node, failed nodes)
  code                        the code server (hotmesh.code): load_file, soft_purge, ...
  versions()                  every node's version (hotmesh.deploy.node_versions)
  confirm(nodes=None)         keep a provisional upgrade: this node's, or nodes' (a list or "all")
  ps()                        this node's threads and asyncio tasks: the function and
                              module version each is in
  where(t)                    the stack of one of them (a ps() row, an id or a name)
  spawn(fn, *args)            start a thread whose print() output comes to this console
  log_here(name, level)       show that logger's records here (returns a function to stop)
  node().stop(confirm=True)   stop this node (without confirm=True it refuses)
Ctrl-C interrupts the running statement; Ctrl-D or exit() detaches and leaves the node running."""


class NodeProxy:
    """What ``node()`` returns in a console: the node, minus accidental stops.

    Attributes and methods are the node's; ``stop()`` needs ``confirm=True``
    because a console must never stop its node by accident.
    """

    def __init__(self, node: NodeLike) -> None:
        object.__setattr__(self, "_node", node)

    def stop(self, *, confirm: bool = False, **kwargs: Any) -> Any:
        """Stop this node; refuses unless ``confirm=True``.

        Raises:
            ConsoleError: ``confirm`` was not given.
        """
        if not confirm:
            raise ConsoleError(
                f"node().stop() would stop {self._node.name} and every service in its process; "
                "if that is really what you want, call node().stop(confirm=True)"
            )
        return self._node.stop(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._node, name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("the node proxy is read-only")

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self._node)) | {"stop"})

    def __str__(self) -> str:
        return str(self._node.name)

    def __repr__(self) -> str:
        return f"<node {self._node.name}>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, NodeProxy):
            return other._node is self._node
        return isinstance(other, str) and other == self._node.name

    def __hash__(self) -> int:
        return hash(self._node.name)


class _Quitter:
    """``exit``/``quit`` in a session: detach (end the session), never stop the node."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Use {self.name}() or Ctrl-D to detach (the node keeps running)"

    def __call__(self, code: object = None) -> None:
        raise SystemExit(code)


def spawn(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> threading.Thread:
    """Start a daemon thread running ``fn(*args, **kwargs)`` in a copy of the caller's context.

    Python threads start with an empty context, so output of a plain
    ``threading.Thread`` goes to the node's own stdout; a thread started with
    ``spawn`` from a console sends its output to that console.
    """
    context = contextvars.copy_context()
    route = current_route.get()

    def run() -> None:
        # Like the statement, it waits for a console that is behind instead
        # of losing output.
        if route is not None:
            route.outbox.add_writer_thread()
        try:
            fn(*args, **kwargs)
        finally:
            if route is not None:
                route.outbox.remove_writer_thread()

    thread = threading.Thread(
        target=context.run,
        args=(run,),
        daemon=True,
        name=f"spawn-{getattr(fn, '__name__', 'fn')}",
    )
    thread.start()
    return thread


def _import_code() -> Any:
    try:
        import hotmesh.code as code_module
    except Exception as exc:
        # A broken code server must not keep engineers out of the console.
        return _Missing("hotmesh.code", exc)
    return code_module


class _Missing:
    """Stands in for an optional hotmesh module that cannot be imported here."""

    def __init__(self, module: str, exc: BaseException) -> None:
        self._text = f"{module} is not available on this node ({type(exc).__name__}: {exc})"

    def __getattr__(self, name: str) -> Any:
        raise ConsoleError(self._text)

    def __repr__(self) -> str:
        return f"<{self._text}>"


class _ConsoleLogHandler(logging.Handler):
    """Writes log records into one console session, above its prompt."""

    def __init__(self, outbox: Outbox, level: int | str) -> None:
        super().__init__(level)
        self._outbox = outbox
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:
            self.handleError(record)
            return
        # Request id 0: output of no statement, shown as it comes.
        self._outbox.write("stderr", text + "\n", 0)


def log_here(name: str = "", level: int | str = "INFO") -> Callable[[], None]:
    """Show the records of logger ``name`` (and its children) in this console.

    Records the logger lets through at ``level`` or above are printed here
    until the returned function is called or the session ends; the logger's
    own level and handlers are left alone (raise its level yourself to see
    more). For example ``stop = log_here("hotmesh.deploy")`` while a rolling
    upgrade runs.

    Raises:
        ConsoleError: called outside a console statement.
    """
    route = current_route.get()
    if route is None:
        raise ConsoleError("log_here() shows records in a console session; call it from one")
    logger = logging.getLogger(name)
    handler = _ConsoleLogHandler(route.outbox, level)
    logger.addHandler(handler)

    def stop() -> None:
        logger.removeHandler(handler)

    route.outbox.on_close(stop)
    return stop


def versions(*args: Any, **kwargs: Any) -> Any:
    """Every node's version: ``hotmesh.deploy.node_versions()``."""
    try:
        from hotmesh.deploy import node_versions
    except ImportError as exc:
        raise ConsoleError(
            f"versions() needs hotmesh.deploy.node_versions, which this node cannot import: {exc}"
        ) from exc
    return node_versions(*args, **kwargs)


def confirm(nodes: Any = None, **kwargs: Any) -> Any:
    """Keep a provisional upgrade: this node's, or ``nodes``' (a list, or ``"all"``).

    ``hotmesh.deploy.confirm``: written to disk before the old code is dropped.
    """
    from hotmesh.deploy import confirm as confirm_upgrade

    return confirm_upgrade(nodes, **kwargs)


def ps() -> Activities:
    """This node's threads and asyncio tasks, each with the function it is in and
    the version of that function's module (shown as a table)."""
    return activities()


def where(target: Any) -> Stack:
    """The stack of a thread or task of this node: a ``ps()`` row, a thread id,
    a task id, a thread or task name, a Thread or a Task.

    Raises:
        LookupError: no such thread or task.
    """
    return stack_of(target)


def help_hotmesh() -> None:
    """Print the list of console helpers."""
    print(_HELP)


def _mark(fn: Any, name: str) -> Any:
    setattr(fn, HELPER_MARK, name)
    return fn


def make_namespace(get_node: Callable[[], NodeLike]) -> dict[str, Any]:
    """A fresh session namespace whose helpers act on the node ``get_node()`` returns.

    The node is looked up at each helper call, so a namespace built for
    shipped code reaches whichever node runs it.
    """

    def node() -> NodeProxy:
        """This node (a proxy whose stop() needs confirm=True)."""
        return NodeProxy(get_node())

    def nodes() -> list[str]:
        """Names of the connected peers."""
        return list(get_node().nodes())

    def call(target: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args)`` on ``target`` and return its value (see help_hotmesh())."""
        return get_node().call(target, fn, *args, **kwargs)

    def cast(target: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args)`` on ``target`` without waiting for a reply."""
        return get_node().cast(target, fn, *args, **kwargs)

    def multicall(targets: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args)`` on every node of ``targets``: (results per node, failed nodes)."""
        return get_node().multicall(targets, fn, *args, **kwargs)

    namespace: dict[str, Any] = {"__name__": "__console__", "__builtins__": builtins}
    helpers = {
        "node": node,
        "nodes": nodes,
        "call": call,
        "cast": cast,
        "multicall": multicall,
        "versions": versions,
        "confirm": confirm,
        "spawn": spawn,
        "log_here": log_here,
        "ps": ps,
        "where": where,
        "help_hotmesh": help_hotmesh,
    }
    for name, fn in helpers.items():
        namespace[name] = _mark(fn, name)
    namespace["code"] = _import_code()
    namespace["exit"] = _Quitter("exit")
    namespace["quit"] = _Quitter("quit")
    return namespace


def running_node() -> NodeLike:
    """The node of this process (``hotmesh._runtime.current_node``), looked up when called."""
    return current_node()


def is_helper(value: object) -> bool:
    """True for a console helper (code shipping leaves those to the target's namespace)."""
    try:
        return isinstance(getattr(value, HELPER_MARK, None), str)
    except Exception:
        return False
