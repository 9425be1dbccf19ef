"""Names a package imports the first time they are used (PEP 562), for
``hotmesh`` and ``hotmesh.deploy``: the package keeps a table, this builds its
module-level ``__getattr__`` and ``__dir__``. No I/O."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

LazyTable = Mapping[str, tuple[str, str | None]]
"""Public name -> (module, attribute, or None for the module itself)."""


def lazy_names(
    package: str, table: LazyTable, namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose globals are ``namespace``.

    A name is imported on first use and stored in ``namespace``, so later
    lookups do not come back here.
    """

    def __getattr__(name: str) -> Any:
        try:
            module_name, attr = table[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        module = importlib.import_module(module_name)
        value = module if attr is None else getattr(module, attr)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        # What the package shows, not the helpers it imported to build itself.
        shown = {n for n in namespace if not n.startswith("_") or n.startswith("__")}
        return sorted(shown | set(table))

    return __getattr__, __dir__
