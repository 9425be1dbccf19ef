"""``start()``: check the options, build a ``Node``, open it, start its layers (sockets)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

from hotmesh._errors import ConfigError
from hotmesh._membership.seeds import Seed
from hotmesh._mesh import cookie as cookies
from hotmesh._node.node import Node
from hotmesh._node.options import DEFAULT_TICK, NodeOptions, resolve_app
from hotmesh._wire.frames import DEFAULT_MAX_MESSAGE_SIZE
from hotmesh.code import add_root


def start(
    name: str,
    *,
    listen: str = "tcp://127.0.0.1:0",
    seeds: Iterable[Seed] = (),
    cookie: str | None = None,
    cookie_file: str | os.PathLike[str] | None = None,
    tick: float = DEFAULT_TICK,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    state_dir: str | os.PathLike[str] | None = None,
    code_roots: Iterable[str | os.PathLike[str]] = (),
    release: str | os.PathLike[str] | None = None,
    app: str | Callable[[Node], Any] | None = None,
    join_timeout: float | None = None,
    max_workers: int = 64,
) -> Node:
    """Start a node in this process and join the mesh; return it running.

    The node's I/O runs on its own thread ("hotmesh-io") with its own event
    loop, so it never blocks the host program (plain, threaded or asyncio;
    an asyncio program calls ``start`` through ``asyncio.to_thread``).
    It binds ``listen``, registers in the per-host registry, says hello to the
    seeds and waits up to ``join_timeout`` (default ``2 * tick``) to be
    accepted; unreachable seeds only log a warning (they are dialled again,
    with backoff, until each answers). Then the code roots are
    handed to the code server, the node's layers start (settings, deploy, the
    console: ``hotmesh._node.extensions``) and ``app`` runs.

    Example::

        node = hotmesh.start("billing", seeds=["tcp://127.0.0.1:7001"])
        node.call(node.nodes()[0], "os.getpid")
        node.stop()

    Args:
        name: ``name`` or ``name@host`` (host defaults to this host's short name).
        listen: zmq endpoint to bind; port 0 picks a free port.
        seeds: where to find members of the mesh: endpoints (``tcp://host:port``)
            and providers, asked again until joined and periodically after:
            ``dns:NAME:PORT`` (A/AAAA records), ``srv:NAME[@HOST:PORT]`` (SRV
            records), ``file:PATH`` (one endpoint a line, re-read when it
            changes), ``local:`` (the nodes of this host), or a callable
            returning endpoints.
        cookie, cookie_file: the cluster secret (see ``load_cookie``).
        tick: failure detection time: a silent peer is reported down within
            1.25 tick (a dead process at once).
        max_message_size: larger frames are refused when sent, dropped when received.
        state_dir: this node's files (default ``hotmesh._paths.node_state_dir(name)``).
        code_roots: managed code roots handed to ``hotmesh.code.add_root``.
        release: release directory (read by the deploy layer from ``options``).
        app: ``"pkg.mod:func"`` or callable, called with the node once started.
        join_timeout: seconds to wait for the seeds' welcome.
        max_workers: most threads running remote calls at once.

    Raises:
        ConfigError: a bad name or option, or a free-threaded interpreter
            running without the GIL (nothing was opened).
        AuthError: CURVE is unavailable in this pyzmq build.
        CookieError: the cookie is missing, empty or its file is readable by others.
        NameInUse: a node of that name runs on this host or is in the mesh.
        TransportError: ``listen`` cannot be bound.
    """
    options = NodeOptions(
        name=name,
        listen=listen,
        seeds=tuple(seeds),
        cookie_file=cookie_file,
        tick=tick,
        max_message_size=max_message_size,
        state_dir=state_dir,
        code_roots=tuple(code_roots),
        release=release,
        app=app,
        join_timeout=join_timeout,
        max_workers=max_workers,
    )
    _require_gil()
    cookies.require_curve()
    secret = cookies.load_cookie(cookie, cookie_file)
    node = Node(options, keys=cookies.curve_keypair(secret))
    try:
        node._open(options.seed_source(), options.wait_to_join)
        for root in options.code_roots:
            add_root(root)
        node._start_extensions()
        if app is not None:
            resolve_app(app)(node)
    except BaseException:
        node.stop()
        raise
    return node


def _require_gil() -> None:
    """Refuse a free-threaded interpreter running without its GIL: the code
    server switches versions by re-pointing module dicts in place, which is
    atomic only under the GIL."""
    gil_enabled = getattr(sys, "_is_gil_enabled", None)
    if gil_enabled is not None and not gil_enabled():
        raise ConfigError(
            "hotmesh needs the GIL, and this free-threaded Python runs without it: "
            "start the process with PYTHON_GIL=1 (or python -X gil=1)"
        )
