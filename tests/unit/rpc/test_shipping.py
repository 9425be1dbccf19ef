"""Code shipping: functions from a console cell travel with what they use (no sockets)."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hotmesh._console.cell import register_source
from hotmesh._errors import ShippingError
from hotmesh._rpc import namespaces, shipping
from hotmesh._wire import codec

_cells = iter(range(1_000_000))


def console_cell(source: str, namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run ``source`` the way a console session does: registered in linecache."""
    namespace = {"__name__": "__console__"} if namespace is None else namespace
    filename = f"<console test #{next(_cells)}>"
    register_source(filename, source)
    exec(compile(source, filename, "exec"), namespace)
    return namespace


def travel(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Pack at the caller, through the wire codec, load at the 'target'."""
    return shipping.load_function(codec.unpack(codec.pack(shipping.pack_function(fn))))


@pytest.fixture(autouse=True)
def _bare_namespace() -> Iterator[None]:
    namespaces.set_namespace_factory(None)
    yield
    namespaces.set_namespace_factory(None)


PASTE = """
import math

SCALE = 10
LIMITS = {"low": (1, 2), "high": {3, 4}}

def helper(x):
    return math.floor(x * SCALE)

def entry(x, pick="low"):
    # uses a helper from the same paste, a module and plain values
    return helper(x), LIMITS[pick]
"""


def test_pasted_function_travels_with_its_helper_module_and_values() -> None:
    ns = console_cell(PASTE)
    shipped = travel(ns["entry"])
    assert shipped(1.25) == (12, (1, 2))
    assert shipped(0.5, pick="high") == (5, {3, 4})
    assert shipped.__globals__ is not ns


def test_shipped_traceback_shows_the_cells_source_lines() -> None:
    ns = console_cell("def fails(x):\n    return 1 / x\n")
    shipped = travel(ns["fails"])
    with pytest.raises(ZeroDivisionError) as info:
        shipped(0)
    text = "".join(traceback.format_exception(info.value))
    assert "return 1 / x" in text and "line 2" in text


def test_importable_function_travels_as_a_reference() -> None:
    packed = shipping.pack_function(codec.pack)
    assert packed["ref"] == "hotmesh._wire.codec:pack"
    assert travel(codec.pack) is codec.pack


def test_closure_over_plain_values_is_shipped() -> None:
    ns = console_cell("def make(n):\n    def add(x):\n        return x + n\n    return add\n")
    assert travel(ns["make"](5))(1) == 6


def test_closure_over_unshippable_value_is_refused_at_the_caller() -> None:
    lock = threading.Lock()
    ns = console_cell(
        "def make(lock):\n    def locked():\n        return lock\n    return locked\n"
    )
    with pytest.raises(ShippingError, match="'lock'"):
        shipping.pack_function(ns["make"](lock))


def test_global_that_cannot_travel_is_refused_with_its_name() -> None:
    ns = console_cell(
        "def uses():\n    return pool\n", {"__name__": "__console__", "pool": object()}
    )
    with pytest.raises(ShippingError, match="'pool'"):
        shipping.pack_function(ns["uses"])


def test_lambda_travels_with_what_it_uses() -> None:
    ns = console_cell("import math\nBASE = 2\nsquare = lambda x, k=BASE: math.pow(x, k)\n")
    assert travel(ns["square"])(3) == 9.0
    ns = console_cell("twice = lambda x: 2 * x\ndef use(x):\n    return twice(x) + 1\n")
    assert travel(ns["use"])(4) == 9


def test_ambiguous_lambdas_on_one_line_are_refused() -> None:
    ns = console_cell("pair = (lambda x: x + 1, lambda x: x - 1)\n")
    with pytest.raises(ShippingError, match="several lambdas"):
        shipping.pack_function(ns["pair"][0])


def test_function_without_source_is_refused() -> None:
    namespace: dict[str, Any] = {}
    exec(compile("def nowhere():\n    return 1\n", "<stdin>", "exec"), namespace)
    with pytest.raises(ShippingError, match="cannot be found"):
        shipping.pack_function(namespace["nowhere"])


def test_nonlocal_closure_is_refused() -> None:
    source = (
        "def counter():\n    n = 0\n    def bump():\n        nonlocal n\n        n += 1\n"
        "        return n\n    return bump\n"
    )
    ns = console_cell(source)
    with pytest.raises(ShippingError, match="nonlocal"):
        shipping.pack_function(ns["counter"]())


def test_decorators_are_left_behind() -> None:
    source = "seen = []\ndef register(fn):\n    seen.append(fn)\n    return fn\n"
    source += "@register\ndef task():\n    return 'ran'\n"
    ns = console_cell(source)
    assert travel(ns["task"])() == "ran"


def test_console_helpers_come_from_the_targets_namespace() -> None:
    def node() -> str:
        return "caller"

    node._hotmesh_helper = "node"  # type: ignore[attr-defined]
    ns = console_cell(
        "def where():\n    return node()\n", {"__name__": "__console__", "node": node}
    )
    packed = shipping.pack_function(ns["where"])
    assert packed["helpers"] == ["node"]
    with pytest.raises(ShippingError, match="helpers"):
        shipping.load_function(packed)
    namespaces.set_namespace_factory(
        lambda: {"__builtins__": __builtins__, "node": lambda: "target"}
    )
    assert shipping.load_function(packed)() == "target"


def test_recursive_function_and_default_arguments_travel() -> None:
    source = (
        "START = 3\ndef countdown(n=START):\n    return [] if n == 0 else [n, *countdown(n - 1)]\n"
    )
    ns = console_cell(source)
    assert travel(ns["countdown"])() == [3, 2, 1]


def test_malformed_description_is_a_shipping_error() -> None:
    with pytest.raises(ShippingError):
        shipping.load_function({"v": 99})
    with pytest.raises(ShippingError):
        shipping.load_function({"v": 1, "name": "x", "entry": "x", "sources": [], "modules": {}})
    with pytest.raises(ShippingError):
        shipping.load_function({"v": 1, "ref": "no.such.module:thing"})
