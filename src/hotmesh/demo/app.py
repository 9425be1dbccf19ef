"""The demo's app entry: ``hotmesh node --release DIR --app hotmesh.demo.app:start``.

Starts the ``demo`` service (callback module ``demokv.server`` from the release) and
the TCP front end; prints the port. ``port()`` is callable by rpc so tests and the
traffic generator can find each node's front end. Does network I/O via the front end.
"""

from __future__ import annotations

import logging
import os

from hotmesh._errors import ConfigError
from hotmesh._runtime import NodeLike
from hotmesh.demo.frontend import FrontEnd
from hotmesh.service import service_status, services, start_service, stop_service

log = logging.getLogger("hotmesh.demo")

SERVICE = "demo"
MODULE = "demokv.server"
PORT_ENV = "HOTMESH_DEMO_PORT"

_frontend: FrontEnd | None = None


def start(node: NodeLike | None, *, port: int | None = None) -> int:
    """Start the demo service and its TCP front end on 127.0.0.1; return the port.

    The port comes from ``port``, else ``$HOTMESH_DEMO_PORT``, else a free one. Prints
    ``hotmesh demo: <node> serves demokv on 127.0.0.1:<port>``.

    Raises:
        ConfigError: ``$HOTMESH_DEMO_PORT`` is not a port number.
        ServiceCrashed: the service's ``init`` failed (e.g. no ``demokv`` release).
    """
    global _frontend
    if port is None:
        port = _port_from_env()
    if SERVICE not in services() or service_status(SERVICE).status == "failed":
        start_service(SERVICE, MODULE)
    if _frontend is None:
        frontend = FrontEnd(SERVICE, port=port)
        frontend.start()
        _frontend = frontend
    name = node.name if node is not None else "this node"
    print(f"hotmesh demo: {name} serves demokv on 127.0.0.1:{_frontend.port}", flush=True)
    log.info("demo front end listening on 127.0.0.1:%d", _frontend.port)
    return _frontend.port


def port() -> int:
    """The front end's TCP port on this node (0 when the demo is not started)."""
    return _frontend.port if _frontend is not None else 0


def connections() -> int:
    """Client connections open now on this node's front end."""
    return _frontend.open_connections if _frontend is not None else 0


def stop() -> None:
    """Stop the front end (closing client connections) and the demo service."""
    global _frontend
    if _frontend is not None:
        _frontend.stop()
        _frontend = None
    if SERVICE in services():
        stop_service(SERVICE)


def _port_from_env() -> int:
    text = os.environ.get(PORT_ENV, "0").strip() or "0"
    if not text.isdigit() or int(text) > 65535:
        raise ConfigError(f"${PORT_ENV} must be a TCP port number (0-65535), got {text!r}")
    return int(text)
