"""Where the demo's release sources (demokv v1, v2) live, and copying one into place.

Does file I/O: ``install_release`` copies a release tree into a release directory.
"""

from __future__ import annotations

import shutil
from pathlib import Path

RELEASES = ("v1", "v1.1", "v2")
_ROOT = Path(__file__).resolve().parent / "releases"


def release_source(version: str) -> Path:
    """The directory holding release ``version`` of demokv (its ``hotmesh-release.toml``).

    Raises:
        ValueError: not one of the shipped releases.
    """
    if version not in RELEASES:
        raise ValueError(f"no demo release {version!r}; shipped: {', '.join(RELEASES)}")
    path = _ROOT / f"demokv-{version}"
    if not (path / "hotmesh-release.toml").is_file():
        raise FileNotFoundError(f"demo release {version} is missing from {path} (broken install?)")
    return path


def install_release(version: str, dest: str | Path) -> Path:
    """Copy release ``version`` into ``dest`` (created if needed), replacing its files.

    This is "new code reaches the node's disk": files change, nothing is loaded. The
    manifest is written last, so a node never sees a new version with old sources.
    """
    source = release_source(version)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.rglob("*")):
        if "__pycache__" in path.parts or path.name == "hotmesh-release.toml":
            continue
        target = dest / path.relative_to(source)
        if path.is_dir():
            target.mkdir(exist_ok=True)
        else:
            shutil.copyfile(path, target)
    shutil.copyfile(source / "hotmesh-release.toml", dest / "hotmesh-release.toml")
    return dest
