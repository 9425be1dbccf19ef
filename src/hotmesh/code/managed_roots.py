"""Which modules are managed: roots, sticky locations, finding sources (reads the file system).

A root is a package prefix (``"myapp"``: myapp and its submodules) or a
directory (modules whose source file lies under it). Modules in the standard
library, in site-packages and hotmesh itself are *sticky*, as Erlang's kernel
and stdlib directories are: they are not managed unless their root was added
with ``allow_sticky=True``.
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig
from importlib.machinery import ModuleSpec, PathFinder, SourceFileLoader

from hotmesh._record import record


@record(frozen=True)
class Root:
    """One managed root: a package prefix or a directory (real path)."""

    text: str
    is_dir: bool
    allow_sticky: bool

    def covers(self, name: str, origin: str | None) -> bool:
        """Whether module ``name`` with source file ``origin`` lies under this root."""
        if not self.is_dir:
            return name == self.text or name.startswith(self.text + ".")
        if origin is None:
            return False
        real = os.path.realpath(origin)
        return real.startswith(self.text + os.sep)


def make_root(root: str | os.PathLike[str], allow_sticky: bool = False) -> Root:
    """Parse a root: a path (PathLike, or a string naming a directory) or a package prefix."""
    text = os.fspath(root)
    if isinstance(root, os.PathLike) or os.sep in text or os.path.isdir(text):
        if not os.path.isdir(text):
            raise ValueError(f"root {text!r} is not a directory")
        return Root(os.path.realpath(text), True, allow_sticky)
    if not all(part.isidentifier() for part in text.split(".")):
        raise ValueError(f"root {text!r} is neither a directory nor a package name")
    return Root(text, False, allow_sticky)


# hotmesh's own package directory (this file is hotmesh/code/managed_roots.py).
_HOTMESH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _sticky_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths.get(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    dirs.update(site.getsitepackages() if hasattr(site, "getsitepackages") else ())
    dirs.add(site.getusersitepackages())
    dirs.add(_HOTMESH_DIR)
    return tuple(os.path.realpath(d) + os.sep for d in dirs if d)


STICKY_DIRS = _sticky_dirs()


def is_sticky(name: str, origin: str | None) -> bool:
    """Whether the module is sticky: hotmesh, builtin/frozen, stdlib or site-packages."""
    if name == "hotmesh" or name.startswith("hotmesh."):
        return True
    if name in sys.builtin_module_names or origin is None:
        return True
    real = os.path.realpath(origin)
    return real.startswith(STICKY_DIRS)


def is_source(spec: ModuleSpec | None) -> bool:
    """Whether the spec is a pure-Python module with a ``.py`` source file."""
    if spec is None or not spec.origin or not spec.has_location:
        return False
    loader = spec.loader
    return spec.origin.endswith(".py") and (
        isinstance(loader, SourceFileLoader) or type(loader).__name__ == "ManagedLoader"
    )


def locate(name: str) -> ModuleSpec | None:
    """Find module ``name``'s spec on the path without importing anything.

    Uses an imported parent package's ``__path__`` when there is one, else
    locates the parents the same way.
    """
    parent, _, _child = name.rpartition(".")
    if not parent:
        return PathFinder.find_spec(name)
    module = sys.modules.get(parent)
    search = getattr(module, "__path__", None) if module is not None else None
    if search is None:
        parent_spec = locate(parent)
        if parent_spec is None or parent_spec.submodule_search_locations is None:
            return None
        search = parent_spec.submodule_search_locations
    return PathFinder.find_spec(name, list(search))


def read_source(path: str) -> str:
    """The decoded text of a source file (honours PEP 263 coding lines)."""
    from importlib.util import decode_source

    with open(path, "rb") as handle:
        return decode_source(handle.read())


def walk_sources(directory: str, package: str) -> list[str]:
    """Module names of the ``.py`` files under a package directory (recursively)."""
    names: list[str] = []
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return names
    for entry in entries:
        if entry.is_file() and entry.name.endswith(".py") and entry.name != "__init__.py":
            stem = entry.name[:-3]
            if stem.isidentifier():
                names.append(f"{package}.{stem}" if package else stem)
        elif (
            entry.is_dir()
            and entry.name.isidentifier()
            and os.path.isfile(os.path.join(entry.path, "__init__.py"))
        ):
            sub = f"{package}.{entry.name}" if package else entry.name
            names.append(sub)
            names.extend(walk_sources(entry.path, sub))
    return names


def modules_under(root: Root) -> list[str]:
    """Module names whose source lies under ``root`` (found on disk, not imported)."""
    if not root.is_dir:
        spec = locate(root.text)
        if spec is None or not is_source(spec):
            return []
        names = [root.text]
        for location in spec.submodule_search_locations or ():
            names.extend(walk_sources(location, root.text))
        return names
    for entry in sys.path:
        base = os.path.realpath(entry or os.getcwd())
        if root.text == base:
            return walk_sources(root.text, "")
        if root.text.startswith(base + os.sep):
            rel = os.path.relpath(root.text, base).split(os.sep)
            if not all(part.isidentifier() for part in rel):
                continue
            packages = [os.path.join(base, *rel[: i + 1]) for i in range(len(rel))]
            if all(os.path.isfile(os.path.join(p, "__init__.py")) for p in packages):
                package = ".".join(rel)
                return [package, *walk_sources(root.text, package)]
    return []
