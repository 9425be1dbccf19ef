"""hotmesh: Erlang-style live operations for fleets of long-running Python services.

The public API on one page. Everything not listed in ``__all__`` is private.

The errors are imported here; everything else is imported the first time it
is used (PEP 562 ``__getattr__``), so a client command (``hotmesh attach``)
that needs none of the node, code or deploy layers does not load them.
``from hotmesh import start`` works as usual.
"""

import typing as _typing

from hotmesh._errors import (
    AuthError,
    CallError,
    CallTimeout,
    CodeError,
    CodePurged,
    ConfigError,
    ConsoleError,
    CookieError,
    DecodeError,
    DeployError,
    EncodeError,
    HotmeshError,
    LoadError,
    MessageTooLarge,
    NameInUse,
    NodeDown,
    NodeStopped,
    NoSuchFunction,
    NoSuchNode,
    NoSuchService,
    NotManaged,
    NotPurged,
    ProtocolVersionError,
    RemoteError,
    ServiceCrashed,
    ServiceError,
    SessionClosed,
    ShippingError,
    StickyModule,
    TransportError,
    UpgradeError,
    WireError,
    XrefError,
)
from hotmesh._lazy import lazy_names as _lazy_names

if _typing.TYPE_CHECKING:
    from hotmesh import code, deploy, service, settings
    from hotmesh._node import Node, current_node, start
    from hotmesh.service import (
        service_call,
        service_call_async,
        service_cast,
        start_service,
        stop_service,
    )

_LAZY: dict[str, tuple[str, str | None]] = {
    "code": ("hotmesh.code", None),
    "deploy": ("hotmesh.deploy", None),
    "service": ("hotmesh.service", None),
    "settings": ("hotmesh.settings", None),
    "Node": ("hotmesh._node", "Node"),
    "current_node": ("hotmesh._node", "current_node"),
    "start": ("hotmesh._node", "start"),
    "service_call": ("hotmesh.service", "service_call"),
    "service_call_async": ("hotmesh.service", "service_call_async"),
    "service_cast": ("hotmesh.service", "service_cast"),
    "start_service": ("hotmesh.service", "start_service"),
    "stop_service": ("hotmesh.service", "stop_service"),
}
"""Public names imported on first use: name -> (module, attribute or None for the module)."""


__getattr__, __dir__ = _lazy_names("hotmesh", _LAZY, globals())


__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "CallError",
    "CallTimeout",
    "CodeError",
    "CodePurged",
    "ConfigError",
    "ConsoleError",
    "CookieError",
    "DecodeError",
    "DeployError",
    "EncodeError",
    "HotmeshError",
    "LoadError",
    "MessageTooLarge",
    "NameInUse",
    "NoSuchFunction",
    "NoSuchNode",
    "NoSuchService",
    "Node",
    "NodeDown",
    "NodeStopped",
    "NotManaged",
    "NotPurged",
    "ProtocolVersionError",
    "RemoteError",
    "ServiceCrashed",
    "ServiceError",
    "SessionClosed",
    "ShippingError",
    "StickyModule",
    "TransportError",
    "UpgradeError",
    "WireError",
    "XrefError",
    "__version__",
    "code",
    "current_node",
    "deploy",
    "service",
    "service_call",
    "service_call_async",
    "service_cast",
    "settings",
    "start",
    "start_service",
    "stop_service",
]
