"""Node options checked before any socket opens, and current_node() without a node."""

from __future__ import annotations

import sys

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


def test_current_node_without_a_running_node_says_so() -> None:
    with pytest.raises(hotmesh.HotmeshError, match="no hotmesh node is running"):
        current_node()


def test_app_spec_resolves_module_and_attribute() -> None:
    assert resolve_app("os.path:join") is __import__("os").path.join


def test_app_spec_without_colon_is_refused() -> None:
    with pytest.raises(hotmesh.ConfigError, match=r"pkg\.mod:func"):
        resolve_app("os.path.join")


def test_options_are_a_frozen_read_only_mapping_of_the_start_arguments() -> None:
    options = NodeOptions(name="a", tick=0.8, seeds=("tcp://127.0.0.1:1",))
    assert options["tick"] == 0.8 and options.get("release") is None
    assert dict(options)["seeds"] == ("tcp://127.0.0.1:1",) and "cookie" not in options
    assert options.wait_to_join == 1.6
    with pytest.raises(FrozenInstanceError):
        options.tick = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        options["tick"] = 1.0  # type: ignore[index]
