"""load_file, load_binary, keep, __upgrade__ and the facade's switching semantics."""

from __future__ import annotations

import pytest

import hotmesh.code as code
from hotmesh import LoadError, NotManaged, NotPurged, StickyModule

from .conftest import Pkg


def test_import_of_managed_module_yields_facade_with_version_one(pkg: Pkg) -> None:
    pkg.write("a", "def f():\n    return 1\n")
    a = pkg.imp("a")
    assert a.f() == 1
    version = code.current_version(pkg.mod("a"))
    assert version is not None and version.namespace["f"] is a.f
    assert code.old_version(pkg.mod("a")) is None
    assert code.is_loaded(pkg.mod("a"))
    assert code.which(pkg.mod("a")) == str(pkg.dir / "a.py")


def test_load_file_switches_qualified_calls_and_keeps_from_imports_old(pkg: Pkg) -> None:
    pkg.write("a", "def f():\n    return 1\n")
    a = pkg.imp("a")
    held = a.f  # what `from a import f` binds
    pkg.write("a", "def f():\n    return 2\n")
    v2 = code.load_file(pkg.mod("a"))
    assert a.f() == 2
    assert held() == 1
    assert code.current_version(pkg.mod("a")) is v2
    assert code.old_version(pkg.mod("a")) is not None


def test_old_code_unqualified_calls_stay_in_old_version(pkg: Pkg) -> None:
    pkg.write("a", "def helper():\n    return 'old'\ndef f():\n    return helper()\n")
    a = pkg.imp("a")
    old_f = a.f
    pkg.write("a", "def helper():\n    return 'new'\ndef f():\n    return helper()\n")
    code.load_file(pkg.mod("a"))
    assert old_f() == "old"
    assert a.f() == "new"


def test_load_refused_while_old_version_is_loaded(pkg: Pkg) -> None:
    pkg.write("a", "X = 1\n")
    a = pkg.imp("a")
    pkg.write("a", "X = 2\n")
    code.load_file(pkg.mod("a"))
    pkg.write("a", "X = 3\n")
    with pytest.raises(NotPurged):
        code.load_file(pkg.mod("a"))
    assert a.X == 2
    assert code.soft_purge(pkg.mod("a"))
    code.load_file(pkg.mod("a"))
    assert a.X == 3


@pytest.mark.parametrize(
    "source",
    [
        "def f(:\n",
        "X = 1\nraise RuntimeError('boom')\n",
        "X = 9\ndef __upgrade__(old, version):\n    raise ValueError('no')\n",
    ],
    ids=["syntax", "body", "hook"],
)
def test_failed_load_changes_nothing(pkg: Pkg, source: str) -> None:
    pkg.write("a", "X = 1\n")
    a = pkg.imp("a")
    before = code.current_version(pkg.mod("a"))
    pkg.write("a", source)
    with pytest.raises(LoadError):
        code.load_file(pkg.mod("a"))
    assert a.X == 1
    assert code.current_version(pkg.mod("a")) is before
    assert code.old_version(pkg.mod("a")) is None


def test_keep_carries_the_same_object_and_upgrade_hook_sees_old_namespace(pkg: Pkg) -> None:
    pkg.write(
        "a",
        """
        import hotmesh.code
        SESSIONS = hotmesh.code.keep("SESSIONS", dict)
        """,
    )
    a = pkg.imp("a")
    sessions = a.SESSIONS
    sessions["u1"] = "alice"
    pkg.write(
        "a",
        """
        import hotmesh.code
        SESSIONS = hotmesh.code.keep("SESSIONS", dict)
        MIGRATED = []
        def __upgrade__(old_namespace, old_version):
            MIGRATED.append((old_version.vsn, sorted(old_namespace["SESSIONS"])))
        """,
    )
    code.load_file(pkg.mod("a"))
    assert a.SESSIONS is sessions
    old = code.old_version(pkg.mod("a"))
    assert old is not None
    migrated = a.MIGRATED
    assert migrated == [(old.vsn, ["u1"])]


def test_load_binary_loads_source_not_on_disk(pkg: Pkg) -> None:
    pkg.write("a", "def f():\n    return 1\n")
    a = pkg.imp("a")
    version = code.load_binary(pkg.mod("a"), "shipped/a.py", "def f():\n    return 'bin'\n")
    assert a.f() == "bin"
    assert version.path == "shipped/a.py" and code.which(pkg.mod("a")) == "shipped/a.py"
    assert version.source == "def f():\n    return 'bin'\n"
    assert code.module_status(pkg.mod("a")) == "modified"


def test_load_binary_accepts_code_object(pkg: Pkg) -> None:
    pkg.write("a", "X = 1\n")
    a = pkg.imp("a")
    compiled = compile("X = 42\n", "<shipped>", "exec")
    version = code.load_binary(pkg.mod("a"), "<shipped>", compiled)
    assert a.X == 42 and version.source is None


def test_load_file_of_new_module_installs_facade_in_package(pkg: Pkg) -> None:
    package = pkg.imp("__init__")
    pkg.write("fresh", "Y = 5\n")
    code.load_file(pkg.mod("fresh"))
    import sys

    facade = sys.modules[pkg.mod("fresh")]
    assert package.fresh is facade and facade.Y == 5


def test_sticky_and_unmanaged_modules_are_refused(pkg: Pkg) -> None:
    with pytest.raises(StickyModule):
        code.load_file("json")
    with pytest.raises(NotManaged):
        code.load_file("hmnothere_xyz")
    assert not code.is_managed("json")
    assert code.is_managed(pkg.mod("a"))


def test_version_identity(pkg: Pkg) -> None:
    pkg.write("a", "X = 1\n")
    pkg.imp("a")
    v1 = code.current_version(pkg.mod("a"))
    assert v1 is not None
    import hashlib

    assert v1.hash == hashlib.sha256(b"X = 1\n").hexdigest()
    assert v1.vsn.startswith(v1.hash[:8] + "-")
    assert v1.source == "X = 1\n" and v1.loaded_at > 0
    pkg.write("a", "X = 1\n")
    code.soft_purge(pkg.mod("a"))
    v2 = code.load_file(pkg.mod("a"))
    assert v2.hash == v1.hash and v2.vsn != v1.vsn
