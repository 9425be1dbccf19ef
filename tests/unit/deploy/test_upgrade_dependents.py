"""upgrade_node on packages built like real ones: after every upgrade the package behaves
exactly as a fresh process importing the new release (re-exports, star imports,
registries filled by other modules, subclasses, enums, dataclasses, exceptions,
aliases, modules added and removed)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

import hotmesh.code as code
from hotmesh import UpgradeError
from hotmesh.deploy import upgrade_node
from tests.unit.deploy.conftest import Release

# The behaviour compared: run here after the upgrade, and in a fresh process.
CHECK = """
import pickle
import sys
import PKG
from PKG import registry, plugins

def behaviour():
    t = PKG.make(2)
    special = plugins.Special(1)
    try:
        raise PKG.errors.NotFound("x")
    except PKG.AppError as exc:
        caught = type(exc).__name__ + ":" + getattr(exc, "code", "-")
    return {
        "describe": t.describe(),
        "helpers": sorted(n for n in PKG.__all__ if n.startswith("helper")),
        "helper": PKG.helper(),
        "handlers": {k: f(t).describe() for k, f in sorted(registry.HANDLERS.items())},
        "special": special.describe(),
        "special is a Thing": isinstance(special, PKG.Thing),
        "pickles": pickle.loads(pickle.dumps(t)) == t,
        "colors": [c.name for c in PKG.core.Color],
        "color is current": PKG.Color.RED is PKG.core.Color.RED,
        "caught": caught,
        "alias": sys.modules["PKG.compat"] is PKG.core,
        "legacy": hasattr(PKG, "legacy"),
        "extra": getattr(PKG, "EXTRA", None),
        "reexport is current": PKG.make is PKG.core.make,
    }
"""

V1 = {
    "__init__": """
        import sys
        from .core import Thing, make, Color
        from .util import *
        from .util import __all__
        from . import plugins, legacy
        from .errors import AppError
        from . import errors
        sys.modules[__name__ + ".compat"] = core
        """,
    "registry": """
        HANDLERS = {}
        def register(name):
            def deco(fn):
                HANDLERS[name] = fn
                return fn
            return deco
        """,
    "core": """
        import dataclasses, enum
        class Color(enum.Enum):
            RED = 1
        @dataclasses.dataclass
        class Thing:
            x: int
            def describe(self):
                return f"thing{self.x}-v1"
        def make(x):
            return Thing(x)
        """,
    "plugins": """
        from .registry import register
        from .core import Thing
        @register("double")
        def double(t):
            return Thing(t.x * 2)
        class Special(Thing):
            def describe(self):
                return "special+" + super().describe()
        """,
    "util": """
        __all__ = ["helper"]
        def helper():
            return "helper-v1"
        """,
    "errors": """
        class AppError(Exception):
            pass
        class NotFound(AppError):
            pass
        """,
    "legacy": "X = 1\n",
    "check": CHECK,
}
V1 = {module: textwrap.dedent(source) for module, source in V1.items()}

# v2: core, util, errors change; legacy removed; extra added; __init__ changes.
V2 = {
    "__init__": V1["__init__"]
    .replace(", legacy", "")
    .replace("from .errors", "from .extra import EXTRA\nfrom .errors"),
    "core": V1["core"].replace("-v1", "-v2").replace("RED = 1", "RED = 1\n    GREEN = 2"),
    "util": """
        __all__ = ["helper", "helper2"]
        def helper():
            return "helper-v2"
        helper2 = helper
        """,
    "errors": V1["errors"].replace(
        "NotFound(AppError):\n    pass", 'NotFound(AppError):\n    code = "9"'
    ),
    "extra": 'EXTRA = "added in v2"\n',
}

# v3: only the registry changes: the modules that registered into it run again.
V3 = {
    "registry": V1["registry"].replace("HANDLERS = {}", "HANDLERS = {}\nVERSION = 3"),
}


def _write(release: Release, files: dict[str, str]) -> None:
    for module, source in files.items():
        release.write(module, textwrap.dedent(source))


def _fresh(release: Release) -> Any:
    """The behaviour a new process importing the release gives."""
    script = (
        f"import sys, json; sys.path.insert(0, {str(release.path)!r}); "
        f"import {release.pkg}.check as c; print(json.dumps(c.behaviour()))"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def _here(release: Release) -> Any:
    return json.loads(json.dumps(release.imp("check").behaviour()))


def test_every_upgrade_behaves_as_a_fresh_process_on_the_new_release(release: Release) -> None:
    _write(release, V1)
    release.imp("check")
    assert _here(release) == _fresh(release)

    _write(release, V2)
    (release.dir / release.pkg / "legacy.py").unlink()
    release.manifest("v2")
    report = upgrade_node()
    assert report.ok
    expected = _fresh(release)
    assert expected["describe"] == "thing2-v2" and expected["extra"] == "added in v2"
    assert _here(release) == expected
    # plugins and check did not change: they ran again because they bound core's objects.
    assert release.mod("plugins") in report.added
    assert "core" in report.added[release.mod("plugins")]
    assert report.removed == [release.mod("legacy")]
    # What still holds old objects: nothing in the package (only containers the old
    # versions own, which go with the purge).
    assert [line for line in report.stale if not line.startswith("container: dict")] == []
    # The alias was never managed, so neither reported removed nor deleted.
    assert release.mod("compat") not in code.loaded()

    _write(release, V3)
    release.manifest("v3")
    report = upgrade_node()
    assert report.ok
    assert release.mod("plugins") in report.added  # it filled the registry's table
    assert _here(release) == _fresh(release)
    assert _here(release)["handlers"] == {"double": "thing4-v2"}


def test_a_dependent_that_cannot_run_again_refuses_the_upgrade(release: Release) -> None:
    release.write("core", "def f():\n    return 1\n")
    release.write("state", "__hotmesh_rerun__ = False\nfrom PKG.core import f\n")
    state = release.imp("state")
    release.write("core", "def f():\n    return 2\n")
    with pytest.raises(UpgradeError) as info:
        upgrade_node()
    assert info.value.step == "dependents"
    assert release.mod("state") in info.value.reason
    assert "__hotmesh_rerun__" in info.value.reason
    assert state.f() == 1
    assert release.imp("core").f() == 1  # nothing changed


def test_a_stale_binding_in_managed_code_reverts_unless_allowed(release: Release) -> None:
    release.write("core", "def f():\n    return 1\n")
    release.write("other", "from PKG import core\n")
    other = release.imp("other")
    core = release.imp("core")
    # A binding the dependents rule does not look at (dunder names are the module's own).
    other.__cached_f__ = core.f
    release.write("core", "def f():\n    return 2\n")
    with pytest.raises(UpgradeError) as info:
        upgrade_node()
    assert info.value.step == "stale"
    assert f"{release.mod('other')}.__cached_f__" in info.value.reason
    assert core.f() == 1  # switched back
    code.soft_purge(release.mod("core"))
    report = upgrade_node(allow_stale=True)
    assert core.f() == 2
    assert any("__cached_f__" in line for line in report.stale)


# Markdown 3.5's pattern: a class kept only in the closure of a decorator's wrapper
# (``@util.deprecated(...)`` returns a function that calls the class).
DEPRECATED = """
    import functools
    def deprecated(message):
        def wrapper(func):
            @functools.wraps(func)
            def deprecated_func(*args, **kwargs):
                return func(*args, **kwargs)
            return deprecated_func
        return wrapper
    """
PROCESSORS = """
    from . import util
    class Processor:
        def run(self, text):
            return text + "-vVERSION"
    @util.deprecated("use Processor")
    class Unescape(Processor):
        def run(self, text):
            return "unescaped+" + super().run(text)
    """


def test_a_class_kept_in_a_decorators_closure_is_not_a_stale_reference(
    release: Release,
) -> None:
    release.write("util", DEPRECATED)
    release.write("processors", PROCESSORS.replace("VERSION", "1"))
    # A module binding the wrapper (a function of util) binds processors' class.
    release.write("user", "from .processors import Unescape\n")
    processors, user = release.imp("processors"), release.imp("user")
    assert processors.Unescape().run("t") == "unescaped+t-v1"
    release.write("processors", PROCESSORS.replace("VERSION", "2"))
    report = upgrade_node()
    assert report.ok
    assert release.mod("user") in report.added
    assert processors.Unescape().run("t") == user.Unescape().run("t") == "unescaped+t-v2"
    assert not any(line.startswith("subclass") for line in report.stale), report.stale
    assert report.stale == [], report.stale
