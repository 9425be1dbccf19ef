"""What the standard library does through a module keeps working across several loads."""

from __future__ import annotations

import dataclasses
import gc
import importlib
import inspect
import logging
import pickle
import sys
import typing
import weakref

import hotmesh.code as code

from .conftest import Pkg

MODEL = """
from __future__ import annotations
import dataclasses
import enum
import logging
import typing

TAG = "vN"
log = logging.getLogger(__name__)

class Color(enum.Enum):
    RED = 1
    GREEN = 2

@dataclasses.dataclass
class Point:
    x: int
    y: int = 0
    registry: typing.ClassVar[dict] = {}

    def norm(self) -> int:
        return abs(self.x) + abs(self.y)

class Hinted:
    value: Color
    point: Point

def make(x: int) -> Point:
    return Point(x)

__all__ = ["Point", "make", "TAG"]
"""


def _load_n_times(pkg: Pkg, n: int) -> object:
    pkg.write("m", MODEL)
    m = pkg.imp("m")
    for i in range(2, n + 1):
        pkg.write("m", MODEL.replace('"vN"', f'"v{i}"'))
        code.purge(pkg.mod("m"))
        code.load_file(pkg.mod("m"))
    return m


def test_pickle_dataclass_typing_enum_logging_after_several_loads(pkg: Pkg) -> None:
    m = _load_n_times(pkg, 3)
    assert m.TAG == "v3"  # type: ignore[attr-defined]
    point = m.make(3)  # type: ignore[attr-defined]
    assert pickle.loads(pickle.dumps(point)) == point
    assert pickle.loads(pickle.dumps(m.make)) is m.make  # type: ignore[attr-defined]
    assert pickle.loads(pickle.dumps(m.Color.RED)) is m.Color.RED  # type: ignore[attr-defined]
    fields = [f.name for f in dataclasses.fields(m.Point)]  # type: ignore[attr-defined]
    assert fields == ["x", "y"]  # the string ClassVar was recognised
    hints = typing.get_type_hints(m.Hinted)  # type: ignore[attr-defined]
    assert hints == {"value": m.Color, "point": m.Point}  # type: ignore[attr-defined]
    assert m.log is logging.getLogger(pkg.mod("m"))  # type: ignore[attr-defined]
    assert m.Point.__init__.__globals__ is code.current_version(pkg.mod("m")).namespace  # type: ignore


def test_star_import_and_inspect_getsource(pkg: Pkg) -> None:
    m = _load_n_times(pkg, 2)
    scope: dict[str, object] = {}
    exec(f"from {pkg.mod('m')} import *", scope)
    assert scope["TAG"] == "v2" and "Color" not in scope
    old_make = code.old_version(pkg.mod("m")).namespace["make"]  # type: ignore[union-attr]
    pkg.write("m", "X = 'on disk now'\n")
    assert "def make" in inspect.getsource(m.make)  # type: ignore[attr-defined]
    assert "def make" in inspect.getsource(old_make)
    assert inspect.getmodule(m.make) is m  # type: ignore[attr-defined]


def test_submodules_stay_reachable_after_package_load(pkg: Pkg) -> None:
    pkg.write("__init__", "X = 1\n")
    pkg.write("sub", "Y = 2\n")
    package = pkg.imp("__init__")
    sub = pkg.imp("sub")
    pkg.write("__init__", "X = 10\n")
    code.load_file(pkg.name)
    assert package.X == 10 and package.sub is sub
    pkg.write("sub", "Y = 20\n")
    code.load_file(pkg.mod("sub"))
    assert package.sub.Y == 20


def test_instances_created_before_a_load_keep_working(pkg: Pkg) -> None:
    m = _load_n_times(pkg, 1)
    point = m.make(-4)  # type: ignore[attr-defined]
    pkg.write("m", MODEL.replace("abs(self.y)", "abs(self.y) * 100"))
    code.load_file(pkg.mod("m"))
    assert point.norm() == 4
    assert m.make(-4).norm() == 4  # type: ignore[attr-defined]
    assert not isinstance(point, m.Point)  # type: ignore[attr-defined]


def test_runtime_rebound_global_is_live_and_writes_reach_version_code(pkg: Pkg) -> None:
    pkg.write(
        "m",
        """
        counter = 0
        LIMIT = 1
        def bump():
            global counter
            counter += 1
            return counter
        def limit():
            return LIMIT
        """,
    )
    m = pkg.imp("m")
    m.bump()
    m.bump()
    assert m.counter == 2
    m.LIMIT = 7
    assert m.limit() == 7
    m.counter = 10
    assert m.bump() == 11
    del m.LIMIT
    assert not hasattr(m, "LIMIT")


def test_importlib_reload_is_a_code_server_load(pkg: Pkg) -> None:
    pkg.write("m", "X = 1\n")
    m = pkg.imp("m")
    pkg.write("m", "X = 2\n")
    assert importlib.reload(m) is m
    assert m.X == 2 and code.check_old_code(pkg.mod("m"))
    assert sys.modules[pkg.mod("m")] is m


def test_a_module_put_in_sys_modules_without_the_finder_is_adopted_by_the_next_load(
    pkg: Pkg,
) -> None:
    import importlib.util

    pkg.write("a", "X = 1\n")
    pkg.imp("a")
    code.load_file(pkg.mod("a"))  # a load has scanned sys.modules
    path = pkg.write("b", "def get():\n    return 1\n")
    spec = importlib.util.spec_from_file_location(pkg.mod("b"), path)
    assert spec is not None and spec.loader is not None
    plain = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plain)
    sys.modules[pkg.mod("b")] = plain
    assert not code.is_loaded(pkg.mod("b"))
    code.purge(pkg.mod("a"))
    code.load_file(pkg.mod("a"))  # the next load adopts it, as add_root would have
    assert code.is_loaded(pkg.mod("b"))
    pkg.write("b", "def get():\n    return 2\n")
    code.load_file(pkg.mod("b"))
    assert plain.get() == 2


def test_module_imported_before_root_was_added_is_adopted(pkg: Pkg) -> None:
    other = f"{pkg.name}_late"
    late = pkg.root / other
    late.mkdir()
    (late / "__init__.py").write_text("import hotmesh.code\nSTATE = hotmesh.code.keep('S', list)\n")
    (late / "user.py").write_text(f"import {other}\ndef get():\n    return {other}.V\n")
    (late / "__init__.py").write_text(
        "import hotmesh.code\nSTATE = hotmesh.code.keep('S', list)\nV = 1\n"
    )
    importlib.invalidate_caches()
    plain = importlib.import_module(other)
    user = importlib.import_module(f"{other}.user")
    try:
        plain.STATE.append("x")
        code.add_root(other)
        facade = sys.modules[other]
        assert facade is plain and code.is_loaded(other)  # the module object becomes the facade
        assert user.get() == 1
        (late / "__init__.py").write_text(
            "import hotmesh.code\nSTATE = hotmesh.code.keep('S', list)\nV = 2\n"
        )
        code.load_file(other)
        assert user.get() == 2
        assert facade.STATE == ["x"]
    finally:
        for name in [n for n in sys.modules if n == other or n.startswith(other + ".")]:
            del sys.modules[name]


KEEPER = "import hotmesh.code\nCACHE = hotmesh.code.keep('c', dict)\n"


def test_one_hundred_loads_leak_no_versions(pkg: Pkg) -> None:
    pkg.write(
        "m", "import hotmesh.code\nCACHE = hotmesh.code.keep('c', dict)\ndef f():\n    return 0\n"
    )
    m = pkg.imp("m")
    refs = []
    for i in range(100):
        refs.append(weakref.ref(m.f))
        pkg.write(
            "m",
            f"{KEEPER}def f():\n    return {i}\n",
        )
        code.purge(pkg.mod("m"))
        code.load_file(pkg.mod("m"))
    code.purge(pkg.mod("m"))
    gc.collect()
    alive = [r for r in refs if r() is not None]
    assert alive == []
    assert m.f() == 99


def test_stale_references_lists_from_import_holders(pkg: Pkg) -> None:
    pkg.write("m", "def f():\n    return 1\nclass C:\n    pass\n")
    pkg.write("user", "from PKG.m import f\nfrom PKG import m\nINSTANCE = m.C()\n")
    pkg.imp("user")
    pkg.write("m", "def f():\n    return 2\nclass C:\n    pass\n")
    code.load_file(pkg.mod("m"), force=True)
    stale = code.stale_references(pkg.mod("m"))
    kinds = {(s.kind, s.holder, s.name) for s in stale}
    assert ("binding", pkg.mod("user"), "f") in kinds
    assert any(s.kind == "instances" and s.target.endswith(".C") for s in stale)
    assert all(str(s) for s in stale)


OWN_HOLDERS = """
import functools
def deprecated(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)
    return wrapper
class Base:
    def f(self):
        return VERSION
@deprecated
class Wrapped(Base):
    def f(self):
        return -1
KINDS = {"plain": type("Plain", (Base,), {}), "nested": [(type("Deep", (Base,), {}),)]}
"""


def test_stale_references_leave_out_what_the_old_version_holds_itself(pkg: Pkg) -> None:
    # Markdown 3.5's pattern: a class kept only in a decorator's closure, and
    # subclasses kept in the module's own tables, are the old version itself.
    pkg.write("m", "VERSION = 1\n" + OWN_HOLDERS)
    pkg.write("user", "from PKG import m\nclass Mine(m.Base):\n    pass\n")
    pkg.imp("user")
    pkg.write("m", "VERSION = 2\n" + OWN_HOLDERS)
    code.load_file(pkg.mod("m"), force=True)
    stale = code.stale_references(pkg.mod("m"))
    assert [str(s) for s in stale] == [
        f"subclass: {pkg.mod('user')}.Mine holds old {pkg.mod('m')}.Base"
    ]


def test_a_binding_of_a_decorators_wrapper_around_old_code_is_stale(pkg: Pkg) -> None:
    # The wrapper is a function of another module (deco), but it runs m's old class.
    pkg.write("deco", OWN_HOLDERS.split("class Base")[0])
    wrapped = "from PKG.deco import deprecated\n@deprecated\nclass Wrapped:\n    V = VERSION\n"
    pkg.write("m", "VERSION = 1\n" + wrapped)
    pkg.write("user", "from PKG.m import Wrapped\n")
    pkg.imp("user")
    pkg.write("m", "VERSION = 2\n" + wrapped)
    code.load_file(pkg.mod("m"), force=True)
    stale = code.stale_references(pkg.mod("m"))
    assert [str(s) for s in stale] == [
        f"binding: {pkg.mod('user')}.Wrapped holds old {pkg.mod('m')}.Wrapped"
    ]


B_SOURCE = (
    "from PKG.a import A\ndef g():\n    return N\nclass B(A):\n    def h(self):\n        return N\n"
)


def test_stale_references_of_a_batch_match_one_module_at_a_time(pkg: Pkg) -> None:
    pkg.write("a", "def f():\n    return 1\nclass A:\n    pass\n")
    pkg.write("b", B_SOURCE.replace("N", "1"))
    pkg.write("user", "from PKG.a import f\nfrom PKG.b import g, B\nclass Mine(B):\n    pass\n")
    pkg.imp("user")
    pkg.write("a", "def f():\n    return 2\nclass A:\n    pass\n")
    pkg.write("b", B_SOURCE.replace("N", "2"))
    code.atomic_load([pkg.mod("a"), pkg.mod("b")], force=True)
    mods = [pkg.mod("a"), pkg.mod("b"), pkg.mod("user")]
    together = code.stale_references_of(mods)
    assert list(together) == mods
    assert together[pkg.mod("user")] == []  # it has no old version
    assert {str(s) for s in together[pkg.mod("a")]} == {
        f"binding: {pkg.mod('user')}.f holds old {pkg.mod('a')}.f"
    }
    # old b's subclass of old a.A goes with the purge of both: not listed together ...
    assert {str(s) for s in together[pkg.mod("b")]} == {
        f"binding: {pkg.mod('user')}.g holds old {pkg.mod('b')}.g",
        f"binding: {pkg.mod('user')}.B holds old {pkg.mod('b')}.B",
        f"subclass: {pkg.mod('user')}.Mine holds old {pkg.mod('b')}.B",
    }
    # ... while one module at a time labels it as the old version it is.
    alone = {str(s) for s in code.stale_references(pkg.mod("a"))}
    assert alone - {str(s) for s in together[pkg.mod("a")]} == {
        f"binding: {pkg.mod('b')} (old {code.old_version(pkg.mod('b')).vsn}).A "  # type: ignore[union-attr]
        f"holds old {pkg.mod('a')}.A",
        f"subclass: {pkg.mod('b')} (old {code.old_version(pkg.mod('b')).vsn}).B "  # type: ignore[union-attr]
        f"holds old {pkg.mod('a')}.A",
    }


def test_body_capturing_its_module_object_gets_the_facade(pkg: Pkg) -> None:
    pkg.write("m", "import sys\nTHIS = sys.modules[__name__]\nX = 1\n")
    m = pkg.imp("m")
    assert m.THIS is m
    pkg.write("m", "import sys\nTHIS = sys.modules[__name__]\nX = 2\n")
    code.load_file(pkg.mod("m"))
    assert m.THIS is m and m.THIS.X == 2
