"""Call and reply messages of the rpc layer, and their errors (pure, no I/O).

A call is ``{"t": "call", "id", "fn" | "fnp", "a" (args, a list), "k", "dl"}`` (``nr`` set for a
cast); a reply is ``{"t": "reply", "id", "ok": True, "v"}`` or
``{"t": "reply", "id", "ok": False, "e": {...}}``.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Any

from hotmesh._errors import CodePurged, EncodeError, NoSuchFunction, RemoteError, ShippingError

# Error kinds carried in a failed reply's "e" dict.
REMOTE = "remote"
NO_SUCH_FUNCTION = "nosuchfunction"
UNENCODABLE = "encode"
SHIPPING = "shipping"


def call_message(
    call_id: int,
    fn: str | Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    timeout: float,
    *,
    reply: bool = True,
) -> dict[str, Any]:
    """The message asking a node to run ``fn(*args, **kwargs)`` before ``now + timeout``.

    ``fn`` is a dotted path, or a function shipped by source through
    ``hotmesh._rpc.shipping`` (imported only when needed).
    """
    # The args go as a list: a tuple travels as a tagged array, which costs a
    # hook on both sides, and the target only unpacks them into the call.
    message: dict[str, Any] = {"t": "call", "id": call_id, "a": list(args), "k": kwargs}
    if isinstance(fn, str):
        message["fn"] = fn
    elif callable(fn):
        from hotmesh._rpc.shipping import pack_function

        message["fnp"] = pack_function(fn)
    else:
        raise EncodeError(f"fn must be a dotted path or a function, not {type(fn).__name__}")
    # Wall-clock deadline: the target drops requests that arrive too late (for
    # instance queued while it was down). Nodes of one host share the clock.
    message["dl"] = time.time() + timeout
    if not reply:
        message["nr"] = True
    return message


def describe(message: dict[str, Any]) -> str:
    """A short name for the function a call message runs (for errors and logs)."""
    if "fn" in message:
        return str(message["fn"])
    packed = message.get("fnp")
    name = packed.get("name") if isinstance(packed, dict) else None
    return f"<shipped {name or 'function'}>"


def ok_reply(call_id: int, value: Any) -> dict[str, Any]:
    """A successful reply."""
    return {"t": "reply", "id": call_id, "ok": True, "v": value}


def error_reply(call_id: int, kind: str, exc: BaseException | None, text: str) -> dict[str, Any]:
    """A failed reply: ``kind`` says which failure, ``text`` the message."""
    error: dict[str, Any] = {"kind": kind, "msg": text}
    if exc is not None:
        error["type"] = _qualified(type(exc))
        error["tb"] = "".join(traceback.format_exception(exc))
    return {"t": "reply", "id": call_id, "ok": False, "e": error}


def exception_reply(call_id: int, exc: BaseException) -> dict[str, Any]:
    """A failed reply for an exception (any ``BaseException``) the called function ended in."""
    text = str(exc)
    if not text and isinstance(exc, CodePurged):
        text = "hotmesh.code.purge stopped the worker running this call (it ran old code)"
    reply = error_reply(call_id, REMOTE, exc, text)
    reply["e"]["exc"] = exc
    return reply


def result_of(reply: dict[str, Any], node: str, fn: str) -> Any:
    """The value carried by ``reply``, or raise the error it carries.

    Raises:
        RemoteError: the function raised on ``node`` (or its value could not travel).
        NoSuchFunction: ``fn`` does not resolve on ``node``.
        ShippingError: a shipped function could not be loaded on ``node``.
    """
    if reply.get("ok"):
        return reply.get("v")
    error = reply.get("e")
    if not isinstance(error, dict):
        raise RemoteError(node, "hotmesh.DecodeError", f"malformed reply to {fn}")
    kind, text = error.get("kind"), str(error.get("msg", ""))
    if kind == NO_SUCH_FUNCTION:
        raise NoSuchFunction(f"{text} (on {node})")
    if kind == SHIPPING:
        raise ShippingError(f"{text} (on {node})")
    exc_type = str(error.get("type", "Exception"))
    if kind == UNENCODABLE:
        exc_type = "hotmesh.EncodeError"
    raise RemoteError(node, exc_type, text, str(error.get("tb", "")), exc=error.get("exc"))


def _qualified(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
