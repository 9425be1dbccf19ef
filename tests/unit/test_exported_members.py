"""The public surface is exactly ``hotmesh.__all__``, sorted and importable."""

from __future__ import annotations

import hotmesh


def test_all_is_sorted() -> None:
    assert hotmesh.__all__ == sorted(hotmesh.__all__)


def test_every_exported_name_exists() -> None:
    missing = [name for name in hotmesh.__all__ if not hasattr(hotmesh, name)]
    assert missing == []


def test_public_names_not_in_all_are_submodules_only() -> None:
    import types

    public = {name for name in vars(hotmesh) if not name.startswith("_")}
    extra = {
        name
        for name in public - set(hotmesh.__all__)
        if not isinstance(getattr(hotmesh, name), types.ModuleType)
    }
    assert extra == set()


def test_errors_share_one_root() -> None:
    from hotmesh import _errors

    for name in dir(_errors):
        obj = getattr(_errors, name)
        if (
            isinstance(obj, type)
            and issubclass(obj, Exception)
            and obj.__module__ == _errors.__name__
        ):
            assert issubclass(obj, hotmesh.HotmeshError), name


def test_importing_hotmesh_loads_only_the_errors_and_the_lazy_table_until_a_name_is_used() -> None:
    import subprocess
    import sys

    code = (
        "import sys, hotmesh\n"
        "print(sorted(m for m in sys.modules if m.startswith('hotmesh')))\n"
        "from hotmesh import start, deploy\n"
        "from hotmesh._node import start as real_start\n"
        "print(start is real_start and deploy is sys.modules['hotmesh.deploy'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    loaded, same = done.stdout.splitlines()
    assert loaded == "['hotmesh', 'hotmesh._errors', 'hotmesh._lazy']"
    assert same == "True"


def test_an_unknown_name_is_an_attribute_error() -> None:
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nonesuch'"):
        hotmesh.nonesuch  # noqa: B018
    assert "start" in dir(hotmesh) and "_lazy_names" not in dir(hotmesh)
