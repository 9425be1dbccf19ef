"""The namespace code shipped to this node runs in: a bare one, or the one the
node's console sets as the node starts (with its helpers). Process-wide, no
I/O; apart from ``shipping`` so that setting it does not load code shipping."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

Namespace = dict[str, Any]


def _bare_namespace() -> Namespace:
    return {"__name__": "__shipped__", "__builtins__": builtins}


_namespace_factory: Callable[[], Namespace] = _bare_namespace


def set_namespace_factory(factory: Callable[[], Namespace] | None) -> None:
    """Build the namespace shipped code runs in with ``factory`` (None: a bare one).

    The console installs its session namespace here, so shipped functions
    find ``node()``, ``call`` and the other helpers on the target.
    """
    global _namespace_factory
    _namespace_factory = factory or _bare_namespace


def new_namespace() -> Namespace:
    """A fresh namespace for one shipped function."""
    return _namespace_factory()
