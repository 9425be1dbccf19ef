"""Values ⇄ bytes: msgpack plus ext types for tuples, sets, datetimes, exceptions
and the other values that travel faithfully (no I/O).

The ext codes and byte layouts are documented in docs/reference/wire-protocol.md;
keep the two in step.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable
from typing import Any

import msgpack

from hotmesh import _errors
from hotmesh._errors import DecodeError, EncodeError
from hotmesh._record import record
from hotmesh._wire.scalars import DECODERS as _SCALAR_DECODERS
from hotmesh._wire.scalars import ENCODERS as _SCALAR_ENCODERS
from hotmesh._wire.scalars import encode_int, late_encoder

__all__ = ["MAX_EXCEPTION_NESTING", "MAX_NESTING", "RemoteExceptionData", "pack", "unpack"]

# msgpack's C packer refuses deeper values and its unpacker's stack holds no
# more; every container (tuple and set included: their marker sits inside
# their own array) counts as one level.
MAX_NESTING = 1024

# Exceptions inside exceptions (args, ExceptionGroup members) are cut off
# below this depth on encoding and refused below it on decoding: each level is
# a nested unpack, which costs C stack.
MAX_EXCEPTION_NESTING = 8

# Ext codes. 1-3 are markers: an empty ext that is the first element of an
# array and says what the array stands for, so containers are packed in place
# by msgpack's C code instead of being packed separately and nested as bytes.
# 4 is an exception; 5-12 are scalars (scalars.py).
EXT_TUPLE = 1
EXT_SET = 2
EXT_FROZENSET = 3
EXT_EXCEPTION = 4


@record(frozen=True)
class RemoteExceptionData:
    """An exception that travelled but whose class is neither a builtin nor hotmesh's.

    Decoding gives back an instance of the original class for builtin
    exceptions (``ValueError('x')`` arrives as ``ValueError('x')``) and for
    hotmesh's own errors (``UpgradeError`` arrives with its ``.step`` and
    ``.reason``); any other exception arrives as this plain value. It encodes back to the same wire
    form, so it can be relayed.

    Attributes:
        exc_type: qualified name of the original class, ``module.qualname``.
        message: ``str()`` of the original exception.
        args: the original ``args``; arguments that could not travel are
            replaced by their ``repr()``.
    """

    exc_type: str
    message: str
    args: tuple[Any, ...]

    def __str__(self) -> str:
        return f"{self.exc_type}: {self.message}"


# ---------------------------------------------------------------- encoding

_TUPLE_MARK = msgpack.ExtType(EXT_TUPLE, b"")
_SET_MARK = msgpack.ExtType(EXT_SET, b"")
_FROZENSET_MARK = msgpack.ExtType(EXT_FROZENSET, b"")


def _enc_tuple(obj: tuple[Any, ...]) -> list[Any]:
    return [_TUPLE_MARK, *obj]


def _enc_set(obj: set[Any]) -> list[Any]:
    return [_SET_MARK, *obj]


def _enc_frozenset(obj: frozenset[Any]) -> list[Any]:
    return [_FROZENSET_MARK, *obj]


def _safe_str(obj: object) -> str:
    try:
        return str(obj)
    except Exception:
        return f"<unprintable {type(obj).__name__}>"


def _safe_repr(obj: object) -> str:
    try:
        return repr(obj)
    except Exception:
        return f"<unrepresentable {type(obj).__name__}>"


def _pack_exception(exc_type: str, message: str, args: tuple[Any, ...]) -> bytes:
    """The data of an exception ext; args that cannot travel become their repr."""
    try:
        data: bytes = _fresh_packer().pack([exc_type, message, args])
        return data
    except Exception:
        kept = []
        for arg in args:
            try:
                _fresh_packer().pack(arg)
                kept.append(arg)
            except Exception:
                kept.append(_safe_repr(arg))
        data = _fresh_packer().pack([exc_type, message, tuple(kept)])
        return data


def _enc_exception_parts(key: object, exc_type: str, message: str, args: Any) -> msgpack.ExtType:
    # The exception is packed here, in full, rather than left to the outer
    # packer: that is what lets an exception that holds itself (directly or
    # through its args) be cut off instead of recursing forever.
    active: list[int] = _local.__dict__.setdefault("exceptions", [])
    if id(key) in active or len(active) >= MAX_EXCEPTION_NESTING - 1 or type(args) is not tuple:
        args = ()
    active.append(id(key))
    try:
        return msgpack.ExtType(EXT_EXCEPTION, _pack_exception(exc_type, message, args))
    finally:
        active.pop()


def _enc_exception(obj: BaseException) -> msgpack.ExtType:
    cls = type(obj)
    name = f"{cls.__module__}.{cls.__qualname__}"
    return _enc_exception_parts(obj, name, _safe_str(obj), obj.args)


def _enc_remote_exception(obj: RemoteExceptionData) -> msgpack.ExtType:
    return _enc_exception_parts(obj, obj.exc_type, obj.message, tuple(obj.args))


_EXACT_ENCODERS: dict[type, Callable[[Any], Any]] = {
    tuple: _enc_tuple,
    set: _enc_set,
    frozenset: _enc_frozenset,
    int: encode_int,
    RemoteExceptionData: _enc_remote_exception,
    **_SCALAR_ENCODERS,
}

# Subclasses of the supported types travel as their base type (a namedtuple
# arrives as a tuple, an IntEnum as an int, an OrderedDict as a dict). Order
# matters: datetime before date, bool never gets here (it cannot be subclassed).
_SUBCLASS_ENCODERS: tuple[tuple[type, Callable[[Any], Any]], ...] = (
    (BaseException, _enc_exception),
    (int, encode_int),
    (float, float.__float__),
    (str, str.__str__),
    (bytes, bytes.__bytes__),
    (bytearray, bytes),
    (dict, dict),
    (list, list),
    (tuple, _enc_tuple),
    (set, _enc_set),
    (frozenset, _enc_frozenset),
    # In order: datetime before date (a datetime subclass is not a date).
    *_SCALAR_ENCODERS.items(),
)


class _Unsupported(TypeError):
    """Raised inside the packer for a value of a type that cannot travel."""


def _default(obj: Any) -> Any:
    encoder = _EXACT_ENCODERS.get(type(obj))
    if encoder is not None:
        return encoder(obj)
    for base, encoder in _SUBCLASS_ENCODERS:
        if isinstance(obj, base):
            return encoder(obj)
    late = late_encoder(obj)
    if late is None:
        raise _Unsupported(type(obj))
    if type(obj).__module__ in ("decimal", "uuid"):
        _EXACT_ENCODERS[type(obj)] = late  # Decimal, UUID: found at once from now on
    return late(obj)


def _fresh_packer() -> msgpack.Packer:
    return msgpack.Packer(default=_default, strict_types=True, buf_size=4096)


_local = threading.local()


def pack(obj: object) -> bytes:
    """Encode ``obj`` to bytes; :func:`unpack` gives back an equal value of the same type.

    Travels: None, bool, int (any size), float, str, bytes, bytearray and
    memoryview (arrive as bytes), list, tuple, dict (keys: any value that
    travels and is hashable), set, frozenset, datetime (naive or aware: the
    tzinfo arrives as a fixed offset), date, time, timedelta, Decimal, UUID,
    complex, and exceptions (see :class:`RemoteExceptionData`). Subclasses of
    these travel as their base type.

    Raises:
        EncodeError: a value cannot travel; the message names its type and
            where it was found, e.g. ``cannot encode <class 'socket.socket'>
            at args[1]['conn']``.
    """
    # One packer per thread, taken out of its slot while in use: a hook that
    # runs user code (an exception's __str__, a tzinfo) may call pack() again.
    packer = getattr(_local, "packer", None)
    if packer is None:
        packer = _fresh_packer()
    _local.packer = None
    try:
        data: bytes = packer.pack(obj)
        return data
    except Exception as exc:
        raise _encode_error(obj, exc) from None
    finally:
        _local.packer = packer


# ---------------------------------------------------------- error location


def _render_path(path: list[tuple[str, Any]]) -> str:
    if not path:
        return "top level"
    parts = []
    for i, (kind, step) in enumerate(path):
        if kind == "member":
            parts.append("{…}")
        elif i == 0 and isinstance(step, str) and step.isidentifier():
            parts.append(step)
        else:
            parts.append(f"[{_safe_repr(step)}]")
    return "".join(parts)


def _leaf_error(obj: object) -> BaseException | None:
    """The error packing ``obj`` alone raises, or None when it packs."""
    try:
        _fresh_packer().pack(obj)
    except Exception as exc:
        return exc
    return None


def _describe(obj: object, exc: BaseException, where: str) -> str:
    if isinstance(exc, _Unsupported):
        return f"cannot encode {type(obj)!r} {where}"
    return f"cannot encode {type(obj)!r} {where}: {exc}"


def _locate(obj: object, path: list[tuple[str, Any]], on_path: set[int]) -> EncodeError | None:
    """Walk ``obj`` the way the packer does and explain its first bad value."""
    if len(path) > MAX_NESTING:
        return EncodeError(
            f"cannot encode value nested deeper than {MAX_NESTING} levels "
            f"at {_render_path(path[:8])}…"
        )
    if isinstance(obj, (dict, list, tuple, set, frozenset)):
        if id(obj) in on_path:
            return EncodeError(f"cannot encode a reference cycle at {_render_path(path)}")
        on_path.add(id(obj))
        try:
            if isinstance(obj, dict):
                for key, value in obj.items():
                    if (exc := _leaf_error(key)) is not None:
                        where = f"as a dict key at {_render_path(path)}"
                        return EncodeError(_describe(key, exc, where))
                    found = _locate(value, [*path, ("key", key)], on_path)
                    if found is not None:
                        return found
            elif isinstance(obj, (list, tuple)):
                for index, item in enumerate(obj):
                    found = _locate(item, [*path, ("index", index)], on_path)
                    if found is not None:
                        return found
            else:
                for item in obj:
                    found = _locate(item, [*path, ("member", None)], on_path)
                    if found is not None:
                        return found
        finally:
            on_path.discard(id(obj))
        return None
    if (exc := _leaf_error(obj)) is not None:
        return EncodeError(_describe(obj, exc, f"at {_render_path(path)}"))
    return None


def _encode_error(obj: object, exc: BaseException) -> EncodeError:
    try:
        found = _locate(obj, [], set())
    except RecursionError:
        found = None
    if found is not None:
        return found
    if isinstance(exc, ValueError) and "recursion" in str(exc):
        return EncodeError(
            f"cannot encode a value nested deeper than {MAX_NESTING} levels or holding a cycle"
        )
    return EncodeError(f"cannot encode {type(obj)!r}: {exc}")


# ---------------------------------------------------------------- decoding


class _Marker:
    """What an ext marker decodes to until its array is complete."""

    __slots__ = ("code",)

    def __init__(self, code: int) -> None:
        self.code = code


_MARKERS = {code: _Marker(code) for code in (EXT_TUPLE, EXT_SET, EXT_FROZENSET)}


class _Decoder:
    """Hooks and state for one decoding depth (no user code runs inside, so
    one per thread serves every top-level decode)."""

    __slots__ = ("depth", "ext_hook", "list_hook", "pending")

    def __init__(self, depth: int = 0) -> None:
        self.depth = depth
        # Markers seen minus markers consumed by their array: a marker anywhere
        # but first in an array would otherwise leak a private object.
        self.pending = 0
        # Bound once: msgpack calls these for every ext and every array.
        self.ext_hook = self._ext_hook
        self.list_hook = self._list_hook

    def decode(self, data: bytes | bytearray | memoryview) -> Any:
        self.pending = 0
        obj = msgpack.unpackb(
            data,
            ext_hook=self.ext_hook,
            list_hook=self.list_hook,
            raw=False,
            strict_map_key=False,
            timestamp=3,
        )
        if self.pending:
            raise DecodeError("malformed data: an ext marker outside the first slot of an array")
        return obj

    def _ext_hook(self, code: int, data: bytes) -> Any:
        marker = _MARKERS.get(code)
        if marker is not None:
            if data:
                raise DecodeError(f"marker ext {code} carries {len(data)} bytes")
            self.pending += 1
            return marker
        if code == EXT_EXCEPTION:
            if self.depth >= MAX_EXCEPTION_NESTING:
                raise DecodeError(f"exceptions nested deeper than {MAX_EXCEPTION_NESTING}")
            return _dec_exception(_Decoder(self.depth + 1).decode(data))
        decoder = _SCALAR_DECODERS.get(code)
        if decoder is None:
            raise DecodeError(f"unknown ext code {code}")
        return decoder(data)

    def _list_hook(self, items: list[Any]) -> Any:
        if items and type(items[0]) is _Marker:
            code = items[0].code
            self.pending -= 1
            del items[0]
            if code == EXT_TUPLE:
                return tuple(items)
            if code == EXT_SET:
                return set(items)
            return frozenset(items)
        return items


def _dec_exception(items: Any) -> BaseException | RemoteExceptionData:
    if (
        type(items) is not list
        or len(items) != 3
        or not isinstance(items[0], str)
        or not isinstance(items[1], str)
        or not isinstance(items[2], tuple)
    ):
        raise DecodeError("malformed exception ext")
    exc_type, message, args = items
    module, _, name = exc_type.rpartition(".")
    if module == "builtins":
        cls = getattr(builtins, name, None)
    elif module == _errors.__name__:
        # hotmesh's own errors keep their constructor arguments as args, so
        # they come back with their fields (UpgradeError's .step and .reason).
        cls = getattr(_errors, name, None)
    else:
        cls = None
    if isinstance(cls, type) and issubclass(cls, BaseException):
        try:
            return cls(*args)
        except Exception:
            pass  # args of another shape (an older sender): keep it as data
    return RemoteExceptionData(exc_type, message, args)


def unpack(data: bytes | bytearray | memoryview) -> Any:
    """Decode bytes made by :func:`pack`.

    The standard msgpack timestamp ext (-1) is accepted and arrives as an
    aware UTC datetime.

    Raises:
        DecodeError: the bytes are truncated, garbage, carry trailing bytes,
            an unknown ext code, a malformed ext, or nest deeper than allowed.
            Never any other exception.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data)!r}")
    decoder = getattr(_local, "decoder", None)
    if decoder is None:
        decoder = _local.decoder = _Decoder()
    try:
        return decoder.decode(data)
    except DecodeError:
        raise
    except Exception as exc:
        raise DecodeError(f"malformed msgpack data: {type(exc).__name__}: {exc}") from exc
