"""atomic_load, prepare/finish_loading, xref, delete and revert."""

from __future__ import annotations

import sys

import pytest

import hotmesh.code as code
from hotmesh import CodeError, LoadError, NotPurged, XrefError

from .conftest import Pkg


def _two(pkg: Pkg) -> tuple[object, object]:
    pkg.write("b", "def old_func():\n    return 'b1'\n")
    pkg.write("a", "from PKG import b\ndef f():\n    return b.old_func()\n")
    return pkg.imp("a"), pkg.imp("b")


def test_atomic_load_where_second_module_has_syntax_error_changes_neither(pkg: Pkg) -> None:
    a, _b = _two(pkg)
    va, vb = code.current_version(pkg.mod("a")), code.current_version(pkg.mod("b"))
    pkg.write("a", "from PKG import b\ndef f():\n    return 'a2'\n")
    pkg.write("b", "def old_func(:\n")
    with pytest.raises(LoadError):
        code.atomic_load([pkg.mod("a"), pkg.mod("b")])
    assert code.current_version(pkg.mod("a")) is va
    assert code.current_version(pkg.mod("b")) is vb
    assert a.f() == "b1"  # type: ignore[attr-defined]
    assert not code.check_old_code(pkg.mod("a"))


def test_xref_refuses_call_to_missing_function_until_it_ships_in_same_load(pkg: Pkg) -> None:
    a, _b = _two(pkg)
    pkg.write("a", "from PKG import b\ndef f():\n    return b.new_func()\n")
    problems = code.xref([pkg.mod("a")])
    assert [p.name for p in problems] == [f"{pkg.mod('b')}.new_func"]
    assert str(problems[0]).endswith(
        f":3: {pkg.mod('a')} uses {pkg.mod('b')}.new_func (not defined in {pkg.mod('b')})"
    )
    with pytest.raises(XrefError) as info:
        code.load_file(pkg.mod("a"))
    assert info.value.problems == problems
    assert a.f() == "b1"  # type: ignore[attr-defined]
    pkg.write("b", "def old_func():\n    return 'b1'\ndef new_func():\n    return 'b2'\n")
    code.atomic_load([pkg.mod("a"), pkg.mod("b")])
    assert a.f() == "b2"  # type: ignore[attr-defined]


def test_xref_reports_function_removed_from_target(pkg: Pkg) -> None:
    _two(pkg)
    pkg.write("b", "def renamed():\n    return 'b2'\n")
    problems = code.xref([pkg.mod("b")])
    assert len(problems) == 1
    assert "(removed in the new version)" in problems[0].text
    assert problems[0].module == pkg.mod("a")
    with pytest.raises(XrefError):
        code.load_file(pkg.mod("b"))
    version = code.load_file(pkg.mod("b"), force=True)
    assert code.current_version(pkg.mod("b")) is version


def test_xref_checks_from_imports(pkg: Pkg) -> None:
    pkg.write("b", "def g():\n    return 1\n")
    pkg.write("a", "from PKG.b import g\n")
    pkg.imp("a")
    pkg.write("b", "def h():\n    return 1\n")
    problems = code.xref([pkg.mod("b")])
    assert [(p.module, p.name, p.line) for p in problems] == [
        (pkg.mod("a"), f"{pkg.mod('b')}.g", 1)
    ]


def test_prepare_then_purge_then_finish(pkg: Pkg) -> None:
    pkg.write("a", "X = 1\n")
    a = pkg.imp("a")
    pkg.write("a", "X = 2\n")
    code.load_file(pkg.mod("a"))
    pkg.write("a", "X = 3\n")
    prepared = code.prepare_loading([pkg.mod("a")])
    assert a.X == 2
    with pytest.raises(NotPurged):
        code.finish_loading(prepared)
    assert a.X == 2
    code.purge(pkg.mod("a"))
    versions = code.finish_loading(prepared)
    assert a.X == 3 and versions[pkg.mod("a")] is code.current_version(pkg.mod("a"))
    with pytest.raises(CodeError):
        code.finish_loading(prepared)


def test_finish_fails_when_module_changed_since_prepare(pkg: Pkg) -> None:
    pkg.write("a", "X = 1\n")
    a = pkg.imp("a")
    pkg.write("a", "X = 2\n")
    prepared = code.prepare_loading([pkg.mod("a")])
    code.load_file(pkg.mod("a"))
    code.soft_purge(pkg.mod("a"))
    with pytest.raises(LoadError, match="changed since prepare_loading"):
        code.finish_loading(prepared)
    assert a.X == 2


def test_delete_makes_qualified_references_fail_clearly(pkg: Pkg) -> None:
    pkg.write("a", "def f():\n    return 1\n")
    a = pkg.imp("a")
    held = a.f
    code.delete(pkg.mod("a"))
    assert not code.is_loaded(pkg.mod("a")) and code.check_old_code(pkg.mod("a"))
    with pytest.raises(AttributeError, match="was deleted by the code server"):
        a.f()
    assert held() == 1
    assert pkg.mod("a") not in code.loaded()
    with pytest.raises(NotPurged):
        code.load_file(pkg.mod("a"))
    code.purge(pkg.mod("a"))
    code.load_file(pkg.mod("a"))
    assert a.f() == 1


def test_revert_swaps_back_atomically_and_deletes_new_modules(pkg: Pkg) -> None:
    a, _b = _two(pkg)
    va = code.current_version(pkg.mod("a"))
    pkg.write("a", "from PKG import b\ndef f():\n    return 'a2'\n")
    pkg.write("c", "Z = 1\n")
    new = code.atomic_load([pkg.mod("a"), pkg.mod("c")])
    assert a.f() == "a2"  # type: ignore[attr-defined]
    code.revert([pkg.mod("a"), pkg.mod("c")])
    assert a.f() == "b1"  # type: ignore[attr-defined]
    assert code.current_version(pkg.mod("a")) is va
    assert code.old_version(pkg.mod("a")) is new[pkg.mod("a")]
    assert not code.is_loaded(pkg.mod("c"))
    with pytest.raises(AttributeError):
        sys.modules[pkg.mod("c")].Z  # noqa: B018


def test_revert_without_current_version_changes_nothing(pkg: Pkg) -> None:
    a, _b = _two(pkg)
    pkg.write("a", "from PKG import b\ndef f():\n    return 'a2'\n")
    code.load_file(pkg.mod("a"))
    with pytest.raises(CodeError):
        code.revert([pkg.mod("a"), pkg.mod("nope")])
    assert a.f() == "a2"  # type: ignore[attr-defined]


def test_module_status_and_modified_and_available_modules(pkg: Pkg) -> None:
    pkg.write("a", "X = 1\n")
    pkg.write("b", "Y = 1\n")
    pkg.imp("a")
    assert code.module_status(pkg.mod("a")) == "loaded"
    assert code.module_status(pkg.mod("b")) == "not_loaded"
    assert code.modified_modules() == []
    pkg.write("a", "X = 2\n")
    assert code.module_status(pkg.mod("a")) == "modified"
    assert code.modified_modules() == [pkg.mod("a")]
    (pkg.dir / "a.py").unlink()
    assert code.module_status(pkg.mod("a")) == "removed"
    assert set(code.available_modules()) >= {pkg.name, pkg.mod("b")}
    assert pkg.mod("a") not in code.available_modules()


def test_all_versions_and_loaded(pkg: Pkg) -> None:
    pkg.write("a", "X = 1\n")
    pkg.imp("a")
    pkg.write("a", "X = 2\n")
    code.load_file(pkg.mod("a"))
    current, old = code.all_versions()[pkg.mod("a")]
    assert current is code.current_version(pkg.mod("a"))
    assert old is code.old_version(pkg.mod("a"))
    assert pkg.mod("a") in code.loaded() and pkg.name in code.loaded()


def test_reload_of_deleted_module_is_refused_without_touching_it(pkg: Pkg) -> None:
    import importlib

    pkg.write("a", "X = 1\n")
    a = pkg.imp("a")
    code.delete(pkg.mod("a"))
    with pytest.raises(NotPurged):
        importlib.reload(a)
    assert "X" not in vars(a)


@pytest.mark.parametrize("order", ["new_first", "new_last"])
def test_prepare_of_module_importing_a_new_peer_has_no_effect_until_finish(
    pkg: Pkg, order: str
) -> None:
    pkg.write("a", "X = 1\n")
    a = pkg.imp("a")
    pkg.write("c", "Z = 5\ndef z():\n    return Z\n")
    pkg.write(
        "a", "from PKG import c\nfrom PKG.c import z\nX = c.Z + 1\ndef f():\n    return c.z()\n"
    )
    mods = [pkg.mod("c"), pkg.mod("a")] if order == "new_first" else [pkg.mod("a"), pkg.mod("c")]
    package = sys.modules[pkg.name]
    prepared = code.prepare_loading(mods)
    assert pkg.mod("c") not in sys.modules and "c" not in vars(package)
    assert not code.is_loaded(pkg.mod("c")) and a.X == 1
    code.finish_loading(prepared)
    c = sys.modules[pkg.mod("c")]
    assert package.c is c and a.c is c  # the facade, not the hidden version module
    assert a.X == 6 and a.f() == 5 and a.z() == 5
    assert code.current_version(pkg.mod("c")) is prepared.versions[pkg.mod("c")]
