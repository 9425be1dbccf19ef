"""Every exception hotmesh raises, in one tree (no I/O).

    HotmeshError
    ├── ConfigError ── CookieError
    ├── TransportError
    │   ├── AuthError
    │   ├── NodeDown (a peer is gone: not connected, or went down)
    │   ├── NodeStopped (this node stopped: nothing was or will be delivered)
    │   ├── NameInUse
    │   └── NoSuchNode
    ├── WireError
    │   ├── EncodeError (also a TypeError)
    │   ├── DecodeError ── ProtocolVersionError
    │   └── MessageTooLarge
    ├── CallError
    │   ├── CallTimeout (also a TimeoutError)
    │   ├── NoSuchFunction
    │   ├── RemoteError (.node .exc_type .message .traceback .exc)
    │   └── ShippingError
    ├── ConsoleError ── SessionClosed
    ├── CodeError
    │   ├── NotPurged
    │   ├── LoadError ── XrefError (.problems)
    │   ├── StickyModule
    │   └── NotManaged
    ├── DeployError ── UpgradeError (.node .step .reason .rollout)
    └── ServiceError ── NoSuchService, ServiceCrashed

    BaseException
    └── CodePurged (raised *inside* threads that code.purge interrupts)

Foreign errors (zmq, msgpack, OS) are translated only at the boundary
(``raise DecodeError(...) from exc``).

An error with fields keeps its constructor's arguments as ``args`` (and
builds its message in ``__str__``), so it crosses the wire as itself: the
codec rebuilds hotmesh's own errors with their fields on the other side.
"""

from __future__ import annotations

from typing import Any


class HotmeshError(Exception):
    """Base of every error hotmesh raises."""


class ConfigError(HotmeshError):
    """Raised when an option, environment variable or file holds a bad value."""


class CookieError(ConfigError):
    """Raised when the cluster cookie is missing, empty or has unsafe permissions."""


class TransportError(HotmeshError):
    """Raised when the mesh transport cannot deliver or receive a message."""


class AuthError(TransportError):
    """Raised when a peer or client is refused (wrong cookie) or CURVE is unavailable."""


class NodeDown(TransportError):
    """Raised when the target node is not connected or goes down during a call."""

    def __init__(self, node: str, message: str | None = None) -> None:
        self.node = node
        self.message = message or f"node {node} is down"
        super().__init__(node, self.message)

    def __str__(self) -> str:
        return self.message


class NodeStopped(TransportError):
    """Raised when a call is made, or still waits, on a node that has stopped.

    The peer is not to blame (that is ``NodeDown``): this node left the mesh,
    so nothing more goes out or comes back. ``.node`` is the stopped node.
    """

    def __init__(self, node: str, message: str | None = None) -> None:
        self.node = node
        super().__init__(message or f"node {node} has stopped")


class NameInUse(TransportError):
    """Raised at start when a node of the same name is already in the mesh."""


class NoSuchNode(TransportError):
    """Raised when a node name cannot be resolved to an endpoint."""


class WireError(HotmeshError):
    """Raised when a value or frame cannot be encoded or decoded."""


class EncodeError(WireError, TypeError):
    """Raised at the sender when a value cannot travel (names the type)."""


class DecodeError(WireError):
    """Raised when received bytes are not a valid hotmesh frame."""


class ProtocolVersionError(DecodeError):
    """Raised when a frame carries a protocol version this node does not speak."""


class MessageTooLarge(WireError):
    """Raised when a frame exceeds the configured message size limit."""


class CallError(HotmeshError):
    """Raised when a remote call does not produce a value."""


class CallTimeout(CallError, TimeoutError):
    """Raised when a remote call's reply does not arrive within its timeout."""


class NoSuchFunction(CallError):
    """Raised when the dotted path of a call does not resolve on the target node."""


class RemoteError(CallError):
    """Raised at the caller when the remote function raised.

    Carries the remote node, the exception's type name, its message and the
    remote traceback text.
    """

    def __init__(
        self, node: str, exc_type: str, message: str, traceback: str = "", exc: Any = None
    ) -> None:
        self.node = node
        self.exc_type = exc_type
        self.message = message
        self.traceback = traceback
        self.exc = exc
        super().__init__(node, exc_type, message, traceback, exc)

    def __str__(self) -> str:
        text = f"{self.exc_type}: {self.message} (on {self.node})"
        if self.traceback:
            text += "\n--- remote traceback ---\n" + self.traceback.rstrip()
        return text


class ShippingError(CallError):
    """Raised at the caller when a function cannot be shipped to another node."""


class ConsoleError(HotmeshError):
    """Raised when a console session cannot be opened or used."""


class SessionClosed(ConsoleError):
    """Raised when the console session or its connection has ended."""


class CodeError(HotmeshError):
    """Raised by the code server."""


class NotPurged(CodeError):
    """Raised when a load needs the old slot but an old version is still loaded."""


class LoadError(CodeError):
    """Raised when a load fails (syntax, module body, hook, sanity check); nothing changed."""


class StickyModule(CodeError):
    """Raised when asked to load a sticky module (stdlib, site-packages, hotmesh)."""


class NotManaged(CodeError):
    """Raised when a module is not under a managed root."""


class XrefError(LoadError):
    """Raised when a load would leave dangling references; ``.problems`` lists them."""

    def __init__(self, message: str, problems: list[Any]) -> None:
        self.message = message
        self.problems = list(problems)
        super().__init__(message, self.problems)

    def __str__(self) -> str:
        return self.message


class CodePurged(BaseException):
    """Raised inside a thread running old code when ``hotmesh.code.purge`` interrupts it.

    A BaseException (like KeyboardInterrupt), so ``except Exception`` does not
    swallow it: the nearest Python equivalent of Erlang's untrappable kill.
    """


class DeployError(HotmeshError):
    """Raised by the deploy toolkit."""


class UpgradeError(DeployError):
    """Raised when an upgrade fails; ``.step`` says which step, ``.reason`` why.

    ``.rollout`` is the ``hotmesh.deploy.Rollout`` when a rolling upgrade
    raised it (its results; the table was printed), else None.
    """

    rollout: Any = None

    def __init__(self, node: str, step: str, reason: str) -> None:
        self.node = node
        self.step = step
        self.reason = reason
        super().__init__(node, step, reason)

    def __str__(self) -> str:
        return f"upgrade of {self.node} failed at {self.step}: {self.reason}"


class ServiceError(HotmeshError):
    """Raised by hotmesh services."""


class NoSuchService(ServiceError):
    """Raised when no service of that name runs on the target node."""


class ServiceCrashed(ServiceError):
    """Raised to a caller when the service crashed while handling its message."""
