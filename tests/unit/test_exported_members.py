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
