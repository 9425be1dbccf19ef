"""Node options checked before any socket opens, and current_node() without a node."""

from __future__ import annotations

import pytest

import hotmesh
from hotmesh._node import _resolve_app, current_node


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
    assert _resolve_app("os.path:join") is __import__("os").path.join


def test_app_spec_without_colon_is_refused() -> None:
    with pytest.raises(hotmesh.ConfigError, match=r"pkg\.mod:func"):
        _resolve_app("os.path.join")
