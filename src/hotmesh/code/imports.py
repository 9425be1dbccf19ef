"""What import statements give the modules of a batch being prepared (no I/O of its own).

While ``prepare_loading`` builds new versions, ``builtins.__import__`` is
replaced by :meth:`BatchImports.import_` and importlib's ``_gcd_import`` (what
``importlib.import_module`` calls) by :meth:`BatchImports.import_module`, both
put back afterwards. In the thread
preparing the batch, an import that reaches a module of the batch, whatever
its form (``import p.m``, ``from p.m import x``, ``from .m import *``,
``from . import m``, in a package ``__init__`` or not), gets that module's *new*
version, built on demand (so the order of the batch does not matter, and a
cycle sees a partly executed module as in a fresh process); a package that is
not in the batch but has modules of the batch below it is seen through a
*proxy* copy whose child attributes are the new versions; a managed module
whose file is gone raises ModuleNotFoundError. Importing a child binds it on
its parent's new version, as the import system does. Every other import, and
every import in other threads, goes to the original ``__import__`` untouched.
After the batch is built, the server points every binding of a hidden version
or a proxy at the real module object (``build.redirect_references``).
"""

from __future__ import annotations

import builtins
import importlib._bootstrap as _bootstrap
import sys
import threading
import types
from collections.abc import Callable, Collection, Sequence
from typing import Any


class BatchImports:
    """The import statement as the modules of one batch see it (for one thread)."""

    def __init__(
        self,
        names: set[str],
        build: Callable[[str], types.ModuleType],
        claim: Callable[[str], bool],
        gone: Callable[[str], bool],
        gone_children: Callable[[str], Collection[str]],
    ) -> None:
        """Args:
        names: the modules of the batch (grows when ``claim`` adds one).
        build: builds (or returns, partly executed) a batch module's new version.
        claim: adds a managed module never loaded to the batch; whether it did.
        gone: whether a managed, loaded module's file is gone (removed).
        gone_children: the children (short names) of a package for which ``gone``
            holds, found at once.
        """
        self.names = names
        self.thread = threading.get_ident()
        self.views: dict[str, Any] = {}
        self.proxies: dict[str, types.ModuleType] = {}  # module name -> its proxy
        self._build = build
        self._claim = claim
        self._gone = gone
        self._gone_children = gone_children
        self._prefixes: set[str] = set()
        self._claimed: dict[str, bool] = {}
        self._prior: Callable[..., Any] = builtins.__import__
        self._hook: Callable[..., Any] = self.import_
        self._prior_gcd: Callable[..., Any] = _bootstrap._gcd_import  # type: ignore[attr-defined]
        self._gcd_hook: Callable[..., Any] = self.import_module
        for name in names:
            self._add_prefixes(name)

    # ---------------------------------------------------------- installation
    def install(self) -> None:
        """Replace ``builtins.__import__`` (other threads still get the original)."""
        self._prior = builtins.__import__
        self._prior_gcd = _bootstrap._gcd_import  # type: ignore[attr-defined]
        builtins.__import__ = self._hook
        _bootstrap._gcd_import = self._gcd_hook  # type: ignore[attr-defined]

    def uninstall(self) -> None:
        """Put the previous ``__import__`` back (unless someone replaced ours since)."""
        if builtins.__import__ is self._hook:
            builtins.__import__ = self._prior
        if _bootstrap._gcd_import is self._gcd_hook:  # type: ignore[attr-defined]
            _bootstrap._gcd_import = self._prior_gcd  # type: ignore[attr-defined]

    # ------------------------------------------------------------- resolving
    def import_(
        self,
        name: str,
        globals: dict[str, Any] | None = None,
        locals: Any = None,
        fromlist: Sequence[str] | None = (),
        level: int = 0,
    ) -> Any:
        """``__import__`` with the batch's view; the original for everything else."""
        if threading.get_ident() != self.thread:
            return self._prior(name, globals, locals, fromlist, level)
        absolute = name
        if level > 0:
            package = _bootstrap._calc___package__(globals or {})  # type: ignore[attr-defined]
            if not package or len(package.split(".")) < level:
                return self._prior(name, globals, locals, fromlist, level)  # its own error
            absolute = _bootstrap._resolve_name(name, package, level)  # type: ignore[attr-defined]
        if not self._touches(absolute, fromlist or ()):
            return self._prior(name, globals, locals, fromlist, level)
        module = self.view(absolute)
        if fromlist:
            if hasattr(module, "__path__"):
                self._fromlist(absolute, module, fromlist, recursive=False)
            return module
        if level == 0:
            return self.view(absolute.partition(".")[0])
        if not name:
            return module
        cut = len(name) - len(name.partition(".")[0])
        return self.view(absolute[: len(absolute) - cut])

    def import_module(self, name: str, package: str | None = None, level: int = 0) -> Any:
        """importlib's ``_gcd_import`` (``importlib.import_module``) with the batch's view."""
        if threading.get_ident() != self.thread:
            return self._prior_gcd(name, package, level)
        absolute = name
        if level > 0:
            if not package or len(package.split(".")) < level:
                return self._prior_gcd(name, package, level)  # its own error
            absolute = _bootstrap._resolve_name(name, package, level)  # type: ignore[attr-defined]
        if not self._touches(absolute, ()):
            return self._prior_gcd(name, package, level)
        return self.view(absolute)

    def _touches(self, absolute: str, fromlist: Sequence[str]) -> bool:
        """Whether the batch's view of this import differs from the normal one."""
        touched = False
        parts = absolute.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if self._known(prefix) or prefix in self._prefixes or self._gone(prefix):
                touched = True
        if absolute in self.names or absolute in self._prefixes:
            for item in fromlist:
                if item != "*" and isinstance(item, str):
                    self._known(f"{absolute}.{item}")
        return touched

    def _known(self, name: str) -> bool:
        """Whether ``name`` is in the batch (claiming a managed module never loaded)."""
        if name in self.names:
            return True
        if name in sys.modules:
            return False
        claimed = self._claimed.get(name)
        if claimed is None:
            claimed = self._claimed[name] = self._claim(name)
            if claimed:
                self.names.add(name)
                self._add_prefixes(name)
        return claimed

    def _add_prefixes(self, name: str) -> None:
        parts = name.split(".")
        for i in range(1, len(parts)):
            self._prefixes.add(".".join(parts[:i]))

    def view(self, name: str) -> Any:
        """The module ``name`` as the batch sees it, imported (or built) if need be."""
        found = self.views.get(name)
        if found is not None:
            return found
        parent, _, child = name.rpartition(".")
        if parent and (parent in self.names or parent not in sys.modules):
            self.view(parent)  # imported first, as the import system does
        # A parent already imported and not in the batch is seen (as a proxy) only
        # when something imports it: most loads never build it (see _proxy).
        if self._known(name):
            module: Any = self._build(name)
        elif self._gone(name):
            raise ModuleNotFoundError(
                f"No module named {name!r} (removed by the code being loaded)", name=name
            )
        else:
            module = sys.modules.get(name)
            if module is None:
                self._prior_gcd(name)
                module = sys.modules[name]
            if name in self._prefixes:
                module = self._proxy(name, module)
        holder = self.views.get(parent) if parent else None
        if holder is not None and (parent in self.names or parent in self.proxies):
            holder.__dict__[child] = module  # what the import system does for a child
        self.views[name] = module
        return module

    def _proxy(self, name: str, real: types.ModuleType) -> types.ModuleType:
        """A copy of a package not in the batch, whose batch children are new versions.

        Built when first seen, so it binds the children seen before it (new
        versions, and the proxies of packages with batch modules below them);
        the children seen later bind on it as they come, in ``view``.
        """
        proxy = types.ModuleType(name)
        contents = dict(real.__dict__)
        for key in self._gone_children(name):
            if isinstance(contents.get(key), types.ModuleType):
                del contents[key]
        proxy.__dict__.update(contents)
        self.proxies[name] = proxy
        prefix = name + "."
        for other, module in list(self.views.items()):
            if other.startswith(prefix) and "." not in other[len(prefix) :]:
                proxy.__dict__[other[len(prefix) :]] = module
        for other in sorted(self._prefixes - self.views.keys()):
            if other.startswith(prefix) and "." not in other[len(prefix) :]:
                proxy.__dict__[other[len(prefix) :]] = self.view(other)
        return proxy

    def _fromlist(
        self, absolute: str, module: Any, fromlist: Sequence[str], *, recursive: bool
    ) -> None:
        """Import the submodules a from-import names (importlib's ``_handle_fromlist``)."""
        for item in fromlist:
            if not isinstance(item, str):
                where = f"{absolute}.__all__" if recursive else "``from list''"
                raise TypeError(f"Item in {where} must be str, not {type(item).__name__}")
            if item == "*":
                if not recursive and hasattr(module, "__all__"):
                    self._fromlist(absolute, module, module.__all__, recursive=True)
                continue
            sub = f"{absolute}.{item}"
            if sub in self.names or not hasattr(module, item):
                try:
                    self.view(sub)
                except ModuleNotFoundError as exc:
                    if exc.name != sub:
                        raise
                    if self._gone(sub):
                        # Else the statement would find the old module in sys.modules.
                        raise ImportError(
                            f"cannot import name {item!r} from {absolute!r} "
                            f"(removed by the code being loaded)",
                            name=absolute,
                        ) from None

    def objects(self) -> dict[int, tuple[Any, types.ModuleType]]:
        """Each proxy's id -> (proxy, the real module), for redirecting bindings."""
        result: dict[int, tuple[Any, types.ModuleType]] = {}
        for name, proxy in self.proxies.items():
            real = sys.modules.get(name)
            if real is not None:
                result[id(proxy)] = (proxy, real)
        return result
