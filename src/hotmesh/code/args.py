"""Argument checks of the public ``hotmesh.code`` functions: a wrong type is a TypeError (no I/O).

Erlang's code functions fail with ``badarg`` on a wrong type (``is_loaded(23)``);
here they raise TypeError before anything happens, rather than answer as if a
module of that name did not exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def _fail(what: str, expected: str, value: Any) -> TypeError:
    return TypeError(f"{what} must be {expected}, not {type(value).__name__} ({value!r:.60})")


def module_name(value: Any, what: str = "mod") -> str:
    """``value`` if it is a str (a dotted module name), else TypeError."""
    if not isinstance(value, str):
        raise _fail(what, "a module name (str)", value)
    return value


def module_names(value: Any, what: str = "mods") -> list[str]:
    """A list of module names from an iterable of str; a lone str is refused too."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise _fail(what, "an iterable of module names (e.g. a list of str)", value)
    names = list(value)
    for name in names:
        module_name(name, f"each of {what}")
    return names


def flag(value: Any, what: str) -> bool:
    """``value`` if it is a bool, else TypeError."""
    if not isinstance(value, bool):
        raise _fail(what, "a bool", value)
    return value


def seconds(value: Any, what: str) -> float:
    """``value`` as a float if it is a real number of seconds (not a bool), else TypeError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(what, "a number of seconds", value)
    return float(value)


def text(value: Any, what: str) -> str:
    """``value`` if it is a str, else TypeError."""
    if not isinstance(value, str):
        raise _fail(what, "a str", value)
    return value
