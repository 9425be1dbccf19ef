"""Inside one batch every module sees the new version of every other, whatever the import form."""

from __future__ import annotations

import gc
import sys
import types

import pytest

import hotmesh.code as code
from hotmesh import LoadError

from .conftest import Pkg

# How module `a` reads VALUE and NEW from module `b` of the same package.
FORMS = {
    "from absolute": "from PKG.b import VALUE, NEW\n",
    "from relative": "from .b import VALUE, NEW\n",
    "star": "from .b import *\n",
    "from package": "from . import b\nVALUE, NEW = b.VALUE, b.NEW\n",
    "from parent absolute": "from PKG import b\nVALUE, NEW = b.VALUE, b.NEW\n",
    "import dotted": "import PKG.b\nVALUE, NEW = PKG.b.VALUE, PKG.b.NEW\n",
    "import as": "import PKG.b as bb\nVALUE, NEW = bb.VALUE, bb.NEW\n",
}


@pytest.mark.parametrize("order", ["a first", "b first"])
@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_module_sees_the_new_version_of_a_peer(pkg: Pkg, form: str, order: str) -> None:
    pkg.write("b", "VALUE = 1\n")
    pkg.write("a", "from PKG import b\nVALUE = b.VALUE\n")
    a = pkg.imp("a")
    assert a.VALUE == 1
    pkg.write("b", "VALUE = 2\nNEW = 'only in v2'\n")
    pkg.write("a", FORMS[form])  # NEW exists only in b's new version
    mods = [pkg.mod("a"), pkg.mod("b")]
    code.atomic_load(mods if order == "a first" else mods[::-1])
    assert (a.VALUE, a.NEW) == (2, "only in v2")


def test_package_init_reexports_and_star_imports_are_the_new_ones(pkg: Pkg) -> None:
    pkg.write("core", "def f():\n    return 'core1'\n")
    pkg.write("util", "__all__ = ['g']\ndef g():\n    return 'util1'\n")
    pkg.write("__init__", "from .core import f\nfrom .util import *\n")
    package = pkg.imp("__init__")
    assert (package.f(), package.g()) == ("core1", "util1")
    pkg.write("core", "def f():\n    return 'core2'\n")
    pkg.write("util", "__all__ = ['g', 'h']\ndef g():\n    return 'util2'\nh = g\n")
    pkg.write("__init__", "from .core import f\nfrom .util import *\nassert util.h\n")
    for order in ([pkg.mod("util"), pkg.mod("core"), pkg.name], [pkg.name, pkg.mod("core")]):
        if order[0] == pkg.name:  # second round: only the package and core change
            for mod in code.loaded():
                code.soft_purge(mod)
            pkg.write("core", "def f():\n    return 'core3'\n")
            pkg.write("__init__", "from .core import f\nfrom .util import *\nassert util.h\n#\n")
        code.atomic_load(order)
    assert (package.f(), package.g(), package.h()) == ("core3", "util2", "util2")
    assert package.f is package.core.f
    assert package.util is sys.modules[pkg.mod("util")]


def test_a_module_added_by_the_release_is_seen_and_loaded_with_its_users(pkg: Pkg) -> None:
    pkg.write("__init__", "VERSION = 1\n")
    pkg.write("app", "from . import VERSION\n")
    package, app = pkg.imp("__init__"), pkg.imp("app")
    pkg.write("extra", "class Extra:\n    pass\n")
    pkg.write("__init__", "VERSION = 2\nfrom .extra import Extra\n")
    pkg.write("app", "from . import VERSION, Extra\nfrom .extra import Extra as E2\n")
    # extra is in no list: importing it from the batch adds it to the batch.
    versions = code.atomic_load([pkg.mod("app"), pkg.name])
    assert sorted(versions) == sorted([pkg.name, pkg.mod("app"), pkg.mod("extra")])
    assert (app.VERSION, package.VERSION) == (2, 2)
    assert app.Extra is package.Extra is app.E2 is package.extra.Extra
    assert sys.modules[pkg.mod("extra")] is package.extra


def test_a_module_removed_by_the_release_is_gone_from_the_new_versions_view(pkg: Pkg) -> None:
    guarded = "try:\n    from . import legacy\nexcept ImportError:\n    legacy = None\n"
    path = pkg.write("legacy", "X = 1\n")
    pkg.write("__init__", guarded)
    package = pkg.imp("__init__")
    assert package.legacy.X == 1
    path.unlink()
    pkg.write("__init__", guarded + "# v2\n")
    code.load_file(pkg.name)
    assert package.legacy is None
    assert code.module_status(pkg.mod("legacy")) == "removed"


def test_a_removed_child_is_gone_from_its_unchanged_package_as_a_batch_sees_it(pkg: Pkg) -> None:
    # user is in the batch, the package is not: user sees the package through a
    # proxy, from which the children whose file is gone are left out.
    source = "import PKG\nLEGACY = getattr(PKG, 'legacy', None)\nKEPT = PKG.kept.X\n"
    path = pkg.write("legacy", "X = 1\n")
    pkg.write("kept", "X = 1\n")
    pkg.write("__init__", "from . import legacy, kept\n")
    pkg.write("user", source)
    user = pkg.imp("user")
    assert user.LEGACY is not None
    path.unlink()
    pkg.write("user", source + "# v2\n")
    code.load_file(pkg.mod("user"))
    assert user.LEGACY is None and user.KEPT == 1
    # A module deleted and then loaded again is a child again.
    code.delete(pkg.mod("kept"))
    pkg.write("user", source + "# v3\n")
    code.purge(pkg.mod("user"))
    with pytest.raises(LoadError):  # kept is deleted: the body's PKG.kept fails
        code.load_file(pkg.mod("user"))
    code.purge(pkg.mod("kept"))
    code.load_file(pkg.mod("kept"))
    code.load_file(pkg.mod("user"))
    assert user.KEPT == 1


def test_a_failed_import_of_a_peer_is_an_import_error_the_body_can_catch(pkg: Pkg) -> None:
    pkg.write("__init__", "")
    package = pkg.imp("__init__")
    pkg.write("speedups", "import hotmesh_no_such_module\n")
    pkg.write(
        "__init__",
        "try:\n    from .speedups import fast\nexcept ImportError:\n    fast = None\n",
    )
    versions = code.atomic_load([pkg.name])
    assert list(versions) == [pkg.name]
    assert package.fast is None
    assert not code.is_loaded(pkg.mod("speedups"))


def test_cycles_see_a_partly_executed_peer_as_a_fresh_import_does(pkg: Pkg) -> None:
    pkg.write("a", "A = 1\nfrom . import b\ndef total():\n    return A + b.B\n")
    pkg.write("b", "from . import a\nB = a.A * 10\n")
    a = pkg.imp("a")
    assert a.total() == 11
    pkg.write("a", "A = 2\nfrom . import b\ndef total():\n    return A + b.B\n")
    pkg.write("b", "from . import a\nB = a.A * 100\n")
    code.atomic_load([pkg.mod("b"), pkg.mod("a")])
    assert a.total() == 202


def test_nested_packages_see_new_children_through_an_unchanged_parent(pkg: Pkg) -> None:
    pkg.write("sub.__init__", "")
    pkg.write("sub.leaf", "VALUE = 1\n")
    pkg.write("user", "import PKG.sub.leaf\nVALUE = PKG.sub.leaf.VALUE\n")
    user = pkg.imp("user")
    assert user.VALUE == 1
    pkg.write("sub.leaf", "VALUE = 2\n")
    pkg.write("user", "import PKG.sub.leaf\nVALUE = PKG.sub.leaf.VALUE\n#\n")
    code.atomic_load([pkg.mod("user"), pkg.mod("sub.leaf")])
    assert user.VALUE == 2
    # The binding the body made is the real package object, not a batch proxy.
    assert getattr(user, pkg.name) is sys.modules[pkg.name]


def test_a_package_body_sees_the_child_it_star_imported(pkg: Pkg) -> None:
    pkg.write("sub", "__all__ = ['X']\nX = 1\n")
    pkg.write("__init__", "from .sub import *\nDOUBLE = sub.X * 2\n")
    package = pkg.imp("__init__")
    pkg.write("sub", "__all__ = ['X']\nX = 5\n")
    code.load_file(pkg.mod("sub"))
    code.load_file(pkg.name)  # the body reads `sub`, bound by the import of it
    assert package.DOUBLE == 10


def test_other_threads_imports_are_untouched_while_a_batch_is_prepared(pkg: Pkg) -> None:
    import builtins

    original = builtins.__import__
    pkg.write("a", "X = 1\n")
    pkg.imp("a")
    pkg.write("a", "import builtins\nSEEN = builtins.__import__\nX = 2\n")
    code.load_file(pkg.mod("a"))
    assert builtins.__import__ is original
    assert pkg.imp("a").SEEN is not original  # the batch's import, during the body only


def test_an_alias_in_sys_modules_is_never_managed_nor_deleted(pkg: Pkg) -> None:
    pkg.write("impl", "def f():\n    return 'impl'\n")
    pkg.write(
        "__init__", "import sys\nfrom . import impl\nsys.modules[__name__ + '.compat'] = impl\n"
    )
    package = pkg.imp("__init__")
    # An import hook that fills a module by copying another's attributes, __file__ too.
    hooked = types.ModuleType(pkg.mod("hooked"))
    hooked.__dict__.update({k: v for k, v in vars(package.impl).items() if not k.startswith("__")})
    hooked.__file__ = package.impl.__file__
    sys.modules[pkg.mod("hooked")] = hooked
    code.add_root(pkg.name)  # adopts what was imported since
    assert pkg.mod("compat") not in code.loaded()
    assert pkg.mod("hooked") not in code.loaded()
    assert not code.is_managed(pkg.mod("compat"))
    assert code.module_status(pkg.mod("compat")) == "not_loaded"
    pkg.write("impl", "def f():\n    return 'impl2'\n")
    code.load_file(pkg.mod("impl"))
    assert package.impl.f() == "impl2"
    assert sys.modules[pkg.mod("compat")] is package.impl
    assert "compat" not in vars(package)


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_batch_rebinds_its_own_bindings_of_hidden_modules_without_a_heap_pass(
    pkg: Pkg, form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The package binds its child, `a` binds `b` or the package: all are the
    # batch's own namespaces, rebound to the real modules without gc.get_referrers.
    pkg.write("__init__", "from . import b\n")
    pkg.write("b", "VALUE = 1\n")
    pkg.write("a", "from PKG import b\nVALUE = b.VALUE\n")
    a = pkg.imp("a")
    pkg.write("__init__", "from . import b\nX = 2\n")
    pkg.write("b", "VALUE = 2\nNEW = 'only in v2'\n")
    pkg.write("a", FORMS[form])
    searches: list[object] = []
    real = gc.get_referrers
    monkeypatch.setattr(gc, "get_referrers", lambda *objs: searches.append(objs) or real(*objs))
    code.atomic_load([pkg.mod("__init__"), pkg.mod("a"), pkg.mod("b")])
    assert searches == []
    assert (a.VALUE, a.NEW) == (2, "only in v2")
    assert sys.modules[pkg.name].b is sys.modules[pkg.mod("b")]
    for value in vars(a).values():
        if isinstance(value, types.ModuleType):
            assert sys.modules[value.__name__] is value
