"""Node options checked before any socket opens, and current_node() without a node."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import hotmesh
from hotmesh._node import current_node
from hotmesh._node.options import NodeOptions, resolve_app
from hotmesh._record import FrozenInstanceError
from hotmesh._runtime import running_nodes


def test_a_free_threaded_python_without_its_gil_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: False, raising=False)
    with pytest.raises(hotmesh.ConfigError, match="PYTHON_GIL=1"):
        hotmesh.start("nogil")
    assert running_nodes() == []


def test_bad_node_name_is_refused() -> None:
    with pytest.raises(hotmesh.ConfigError, match="bad node name"):
        hotmesh.start("no spaces allowed")


def test_non_positive_tick_is_refused() -> None:
    with pytest.raises(hotmesh.ConfigError, match="positive"):
        hotmesh.start("a", tick=0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tick": -1.0}, "tick must be positive, not -1.0"),
        ({"tick": float("nan")}, "tick must be positive, not nan"),
        ({"max_workers": 0}, "max_workers must be positive, not 0"),
        ({"max_message_size": -5}, "max_message_size must be positive, not -5"),
        ({"code_roots": ("/no/such/dir",)}, "code root '/no/such/dir' is not a directory"),
        ({"code_roots": ("not a package",)}, "neither a directory nor a package name"),
        ({"code_roots": (3,)}, "code root must be a directory or a package prefix, not 3"),
    ],
)
def test_each_bad_option_is_named_before_anything_starts(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(hotmesh.ConfigError) as info:
        hotmesh.start("a", **options)
    assert message in str(info.value)
    assert running_nodes() == []


def test_code_roots_that_exist_or_name_a_package_are_taken(tmp_path: Path) -> None:
    options = NodeOptions(name="a", code_roots=(tmp_path, str(tmp_path), "myapp.sub"))
    assert options.code_roots == (tmp_path, str(tmp_path), "myapp.sub")


def test_current_node_without_a_running_node_says_so() -> None:
    with pytest.raises(hotmesh.HotmeshError, match="no hotmesh node is running"):
        current_node()


def test_app_spec_resolves_module_and_attribute() -> None:
    assert resolve_app("os.path:join") is __import__("os").path.join


def test_app_spec_without_colon_is_refused() -> None:
    with pytest.raises(hotmesh.ConfigError, match=r"pkg\.mod:func"):
        resolve_app("os.path.join")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "no_such_module_xyz:run",
            "app 'no_such_module_xyz:run': no module named 'no_such_module_xyz'",
        ),
        ("os.no_such_sub:run", "app 'os.no_such_sub:run': no module named 'os.no_such_sub'"),
        ("os.path:no_such_fn", "app 'os.path:no_such_fn': os.path has no attribute 'no_such_fn'"),
        ("os:sep", "app 'os:sep' is a str, not a function"),
        (":run", "pkg.mod:func"),
        ("os:", "pkg.mod:func"),
    ],
)
def test_an_app_that_cannot_be_found_is_a_config_error(spec: str, message: str) -> None:
    with pytest.raises(hotmesh.ConfigError) as info:
        resolve_app(spec)
    assert message in str(info.value)


def test_an_app_module_whose_own_import_fails_raises_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "app_with_a_missing_dep_xyz.py").write_text("import missing_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as info:
        resolve_app("app_with_a_missing_dep_xyz:run")
    assert info.value.name == "missing_dependency_xyz"


def test_options_are_a_frozen_read_only_mapping_of_the_start_arguments() -> None:
    options = NodeOptions(name="a", tick=0.8, seeds=("tcp://127.0.0.1:1",))
    assert options["tick"] == 0.8 and options.get("release") is None
    assert dict(options)["seeds"] == ("tcp://127.0.0.1:1",) and "cookie" not in options
    assert options.wait_to_join == 1.6
    with pytest.raises(FrozenInstanceError):
        options.tick = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        options["tick"] = 1.0  # type: ignore[index]
