"""The pure parts: version bookkeeping and cross-reference analysis (no imports, no I/O)."""

from __future__ import annotations

import pytest

from hotmesh import CodeError, NotPurged
from hotmesh.code import versions
from hotmesh.code import xref_source as xref
from hotmesh.code.versions import Version


def _v(module: str, n: int) -> Version:
    return Version(module, f"0000000{n}-{n}", "0" * 64, None, 0.0, "", {})


def test_after_load_moves_current_to_old_and_refuses_occupied_old_slot() -> None:
    v1, v2, v3 = _v("m", 1), _v("m", 2), _v("m", 3)
    world = versions.after_load({}, {"m": v1})
    assert world == {"m": (v1, None)}
    world = versions.after_load(world, {"m": v2})
    assert world == {"m": (v2, v1)}
    with pytest.raises(NotPurged, match="soft_purge"):
        versions.after_load(world, {"m": v3})


def test_delete_purge_and_revert_entries() -> None:
    v1, v2 = _v("m", 1), _v("m", 2)
    assert versions.after_delete({"m": (v1, None)}, "m") == {"m": (None, v1)}
    with pytest.raises(NotPurged):
        versions.after_delete({"m": (v2, v1)}, "m")
    with pytest.raises(CodeError):
        versions.after_delete({}, "m")
    assert versions.after_purge({"m": (v2, v1)}, "m") == {"m": (v2, None)}
    assert versions.after_revert({"m": (v2, v1), "n": (v1, None)}, ["m", "n"]) == {
        "m": (v1, v2),
        "n": (None, v1),
    }
    with pytest.raises(CodeError):
        versions.after_revert({"m": (None, v1)}, ["m"])


def test_vsn_and_hash() -> None:
    digest = versions.source_hash("X = 1\n")
    assert len(digest) == 64
    assert versions.make_vsn(digest, 7) == f"{digest[:8]}-7"
    assert versions.source_hash(compile("X = 1", "<s>", "exec")) != digest


KNOWN = frozenset({"app", "app.a", "app.b"})
HEADS = frozenset({"app"})


def test_references_through_import_alias_from_import_and_relative_import() -> None:
    source = (
        "import app.b\n"
        "import app.b as bb\n"
        "from app import b\n"
        "from .b import g\n"
        "def f():\n"
        "    return app.b.one() + bb.two() + b.three() + g()\n"
    )
    refs = xref.references("app.a", source, False, KNOWN.__contains__, HEADS)
    assert {(r.target, r.name) for r in refs} == {
        ("app.b", "one"),
        ("app.b", "two"),
        ("app.b", "three"),
        ("app.b", "g"),
    }
    assert (
        xref.references("app.a", "import json\njson.dumps\n", False, KNOWN.__contains__, HEADS)
        == []
    )


def test_defined_names_is_none_when_unknowable() -> None:
    assert xref.defined_names("X = 1\ndef f():\n    global Y\n    Y = 2\n") == {"X", "f", "Y"}
    assert xref.defined_names("from os import *\n") is None
    assert xref.defined_names("def __getattr__(name):\n    return 1\n") is None
    assert xref.defined_names("globals()['Z'] = 1\n") is None


def test_check_words_problems_and_ignores_unrelated_modules() -> None:
    refs = {
        "app.a": ("app/a.py", [xref.Ref(12, "app.b", "missing_func")]),
        "app.c": ("app/c.py", [xref.Ref(3, "app.d", "gone")]),
    }
    names = {"app.a": {"x"}, "app.b": {"other"}, "app.c": set(), "app.d": set()}
    problems = xref.check(
        refs, names.get, names.__contains__, {"app.b"}, {"app.b": {"missing_func"}}
    )
    assert [str(p) for p in problems] == [
        "app/a.py:12: app.a uses app.b.missing_func (removed in the new version)"
    ]
