"""hotmesh.code.dependent_modules: which loaded modules bound objects of the ones that change,
and the sources it need not parse to know."""

from __future__ import annotations

import ast
from typing import Any

import pytest

import hotmesh.code as code
from hotmesh.code.dependent_modules import import_time_uses, may_import

from .conftest import Pkg


def test_every_form_of_binding_makes_a_dependent_and_a_module_reference_does_not(
    pkg: Pkg,
) -> None:
    pkg.write("a", "LIMIT = 10\nclass Base:\n    pass\ndef f():\n    return 1\n")
    pkg.write("b_from", "from .a import f\n")
    pkg.write("c_sub", "from . import a\nclass Sub(a.Base):\n    pass\n")
    pkg.write("d_default", "from . import a\ndef g(x=a.f):\n    return x\n")
    pkg.write("e_table", "from . import a\nTABLE = {'f': a.f}\n")
    pkg.write("f_const", "from .a import LIMIT\n")
    pkg.write("g_read", "import PKG.a\nDOUBLE = PKG.a.LIMIT * 2\n")
    pkg.write("h_module", "from . import a\ndef later():\n    return a.LIMIT\n")
    pkg.write("i_star", "from .a import *\n")
    for mod in ["b_from", "c_sub", "d_default", "e_table", "f_const", "g_read", "h_module"]:
        pkg.imp(mod)
    pkg.imp("i_star")
    found = code.dependents([pkg.mod("a")])
    assert sorted(found) == sorted(
        pkg.mod(m)
        for m in ["b_from", "c_sub", "d_default", "e_table", "f_const", "g_read", "i_star"]
    )
    assert "subclasses" in found[pkg.mod("c_sub")]
    assert "LIMIT" in found[pkg.mod("f_const")]
    assert "reads" in found[pkg.mod("g_read")]


def test_a_registry_run_again_brings_the_modules_that_filled_it(pkg: Pkg) -> None:
    pkg.write("registry", "HANDLERS = []\n")
    pkg.write(
        "plugin",
        "from . import registry\ndef handler():\n    return 1\nregistry.HANDLERS.append(handler)\n",
    )
    pkg.write("user", "from . import plugin\n")
    pkg.imp("user")
    found = code.dependents([pkg.mod("registry")])
    assert list(found) == [pkg.mod("plugin")]


def test_a_module_that_registered_through_a_third_module_is_found_by_its_objects(
    pkg: Pkg,
) -> None:
    pkg.write("registry", "HANDLERS = []\n")
    pkg.write(
        "api",
        "from . import registry\ndef register(fn):\n"
        "    registry.HANDLERS.append(fn)\n    return fn\n",
    )
    pkg.write("plugin", "from . import api\n@api.register\ndef handler():\n    return 1\n")
    pkg.imp("plugin")
    found = code.dependents([pkg.mod("registry")])
    assert pkg.mod("plugin") in found  # api reads registry; plugin filled its list
    assert "filled" in found[pkg.mod("plugin")]


SOURCES = [
    "import os\nX = os.sep\n",
    "from app.b import f\n",
    "import app.b as b\nY = b.f\n",
    "from . import b\nZ = b.f\n",
    "from .b import *\n",
    "from \\\n  .b import f\n",
    "from\t..pkg import b\nclass C(b.Base):\n    pass\n",
    "# app is only named in a comment\nimport json\n",
    "import application\nW = application.x\n",
    "def g():\n    import app.b\n    return app.b.f\n",
]


@pytest.mark.parametrize("source", SOURCES)
def test_a_source_may_import_says_false_for_uses_nothing_at_import_time(source: str) -> None:
    known = {"app", "app.b", "app.pkg", "app.pkg.b", "app.c"}
    heads = frozenset(name.partition(".")[0] for name in known)
    uses = import_time_uses("app.pkg.c", source, False, known)
    assert may_import(source, heads) or uses == {}


def test_may_import_skips_a_source_that_names_no_managed_package() -> None:
    heads = frozenset({"app"})
    assert not may_import("import os\nimport application\n# apply\n", heads)
    assert may_import("import app.b\n", heads)
    assert may_import("from .b import f\n", heads)
    assert may_import("from \\\n.b import f\n", heads)


def test_dependents_do_not_parse_a_module_that_names_no_managed_package(
    pkg: Pkg, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg.write("a", "LIMIT = 10\n")
    pkg.write("plain", "import json\nDUMPS = json.dumps\n")
    pkg.write("user", "from . import a\nTWICE = a.LIMIT * 2\n")
    pkg.imp("plain")
    pkg.imp("user")
    parsed: list[str] = []
    real = ast.parse

    def parse(source: str, *args: Any, **kwargs: Any) -> ast.Module:
        parsed.append(source)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(ast, "parse", parse)
    assert list(code.dependents([pkg.mod("a")])) == [pkg.mod("user")]
    assert "import json\nDUMPS = json.dumps\n" not in parsed
    assert "from . import a\nTWICE = a.LIMIT * 2\n" in parsed
