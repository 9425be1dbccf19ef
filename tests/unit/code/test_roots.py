"""Roots: directories as well as package prefixes, new modules, sticky refusal."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import hotmesh.code as code
from hotmesh import LoadError, StickyModule

from .conftest import Pkg


@pytest.fixture
def src_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on sys.path managed as a directory root."""
    root = tmp_path / "srcroot"
    root.mkdir()
    sys.path.insert(0, str(root))
    code.add_root(root)
    try:
        yield root
    finally:
        code._reset()
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n.startswith("hmdir_")]:
            del sys.modules[name]


def test_directory_root_manages_modules_whose_file_lies_under_it(src_dir: Path) -> None:
    (src_dir / "hmdir_one.py").write_text("X = 1\n")
    importlib.invalidate_caches()
    one = importlib.import_module("hmdir_one")
    assert code.is_loaded("hmdir_one") and code.is_managed("hmdir_one")
    assert code.roots() == [str(src_dir.resolve())]
    (src_dir / "hmdir_one.py").write_text("X = 2\n")
    code.load_file("hmdir_one")
    assert one.X == 2
    (src_dir / "hmdir_two.py").write_text("Y = 1\n")
    assert {"hmdir_one", "hmdir_two"} <= set(code.available_modules())


def test_load_binary_of_module_not_on_disk_creates_it(pkg: Pkg) -> None:
    package = pkg.imp("__init__")
    code.load_binary(pkg.mod("shipped"), "shipped.py", "def hello():\n    return 'hi'\n")
    assert package.shipped.hello() == "hi"
    assert importlib.import_module(pkg.mod("shipped")) is package.shipped
    assert code.which(pkg.mod("shipped")) == "shipped.py"
    assert code.module_status(pkg.mod("shipped")) == "removed"


def test_load_error_names_the_cause_and_keeps_traceback(pkg: Pkg) -> None:
    pkg.write("a", "X = 1\n")
    pkg.imp("a")
    pkg.write("a", "X = 1\nY = undefined_name\n")
    with pytest.raises(LoadError, match="module body: NameError") as info:
        code.load_file(pkg.mod("a"))
    assert isinstance(info.value.__cause__, NameError)


def test_sticky_root_refused_unless_allowed(pkg: Pkg) -> None:
    code.add_root("json")
    assert not code.is_managed("json")
    with pytest.raises(StickyModule, match="allow_sticky"):
        code.load_file("json.decoder")
