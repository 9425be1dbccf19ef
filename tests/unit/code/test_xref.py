"""The cross-reference check of loads: what it refuses, and that it reads only what can break."""

from __future__ import annotations

import pytest

import hotmesh.code as code
from hotmesh import XrefError
from hotmesh.code import xref_source

from .conftest import Pkg


@pytest.mark.parametrize(
    "user",
    [
        "from . import b\ndef use():\n    return b.gone()\n",
        "from PKG.b import gone\n",
        "import PKG.b as alias\ndef use():\n    return alias.gone\n",
        "def use():\n    from . import b\n    return b.gone()\n",
    ],
    ids=["module-attribute", "from-import", "alias", "import-in-function"],
)
def test_load_removing_a_name_an_unchanged_module_uses_is_refused(pkg: Pkg, user: str) -> None:
    pkg.write("b", "def gone():\n    return 1\ndef kept():\n    return 2\n")
    pkg.write("a", user)
    pkg.imp("b")
    pkg.imp("a")
    pkg.write("b", "def kept():\n    return 3\n")
    with pytest.raises(XrefError) as info:
        code.load_file(pkg.mod("b"))
    assert [(p.module, p.name) for p in info.value.problems] == [
        (pkg.mod("a"), f"{pkg.mod('b')}.gone")
    ]
    assert "removed in the new version" in str(info.value)
    assert code.old_version(pkg.mod("b")) is None


def test_name_removed_from_a_package_init_that_a_child_imports_relatively(pkg: Pkg) -> None:
    pkg.write("__init__", "def helper():\n    return 1\n")
    pkg.write("a", "from . import helper\n")
    pkg.imp("__init__")
    pkg.imp("a")
    pkg.write("__init__", "def other():\n    return 1\n")
    with pytest.raises(XrefError) as info:
        code.load_file(pkg.name)
    assert [p.name for p in info.value.problems] == [f"{pkg.name}.helper"]


def test_removed_name_mentioned_only_in_comments_and_strings_is_no_problem(pkg: Pkg) -> None:
    pkg.write("b", "def gone():\n    return 1\n")
    pkg.write("a", "from . import b\n# b.gone() was used here\nNOTE = 'b.gone'\n")
    pkg.imp("b")
    pkg.imp("a")
    pkg.write("b", "def kept():\n    return 3\n")
    code.load_file(pkg.mod("b"))
    assert code.old_version(pkg.mod("b")) is not None


def test_new_module_missing_what_a_loaded_module_asks_of_it_is_refused(pkg: Pkg) -> None:
    pkg.write("a", "def later():\n    from . import fresh\n    return fresh.wanted()\n")
    pkg.imp("a")
    pkg.write("fresh", "def other():\n    return 1\n")
    with pytest.raises(XrefError) as info:
        code.load_file(pkg.mod("fresh"))
    assert [p.name for p in info.value.problems] == [f"{pkg.mod('fresh')}.wanted"]
    assert not code.is_loaded(pkg.mod("fresh"))


def test_dangling_reference_left_by_a_forced_load_is_listed_by_xref_not_by_later_loads(
    pkg: Pkg,
) -> None:
    pkg.write("b", "def gone():\n    return 1\nX = 1\n")
    pkg.write("a", "from . import b\ndef use():\n    return b.gone()\n")
    pkg.imp("b")
    pkg.imp("a")
    pkg.write("b", "X = 2\n")
    code.load_file(pkg.mod("b"), force=True)
    assert code.soft_purge(pkg.mod("b"))
    pkg.write("b", "X = 3\n")
    # The full analysis lists what already dangles; the load adds nothing new.
    assert [p.name for p in code.xref([pkg.mod("b")])] == [f"{pkg.mod('b')}.gone"]
    code.load_file(pkg.mod("b"))
    assert code.current_version(pkg.mod("b")).namespace["X"] == 3  # type: ignore[union-attr]


def test_load_that_removes_no_name_parses_no_other_module(
    pkg: Pkg, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg.write("tiny", "X = 0\n")
    for i in range(30):
        pkg.write(f"m{i}", "from . import tiny\ndef f():\n    return tiny.X\n")
    pkg.imp("tiny")
    for i in range(30):
        pkg.imp(f"m{i}")
    parsed: list[str] = []
    real = xref_source.references

    def spy(module, source, is_package, is_module, heads):  # type: ignore[no-untyped-def]
        parsed.append(module)
        return real(module, source, is_package, is_module, heads)

    monkeypatch.setattr(xref_source, "references", spy)
    pkg.write("tiny", "X = 1\nY = 2\n")
    code.load_file(pkg.mod("tiny"))
    assert parsed == [pkg.mod("tiny")]
    # Removing a name reads only the modules whose source contains that word
    # (m7's references were read when m7 itself was loaded, and are kept).
    assert code.soft_purge(pkg.mod("tiny"))
    pkg.write("m7", "from . import tiny\ndef f():\n    return tiny.X + tiny.Y\n")
    code.load_file(pkg.mod("m7"))
    assert code.soft_purge(pkg.mod("m7"))
    parsed.clear()
    pkg.write("tiny", "X = 1\n")
    with pytest.raises(XrefError) as info:
        code.load_file(pkg.mod("tiny"))
    assert [p.module for p in info.value.problems] == [pkg.mod("m7")]
    assert set(parsed) <= {pkg.mod("tiny"), pkg.mod("m7")}
