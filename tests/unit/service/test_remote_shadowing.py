"""Importing ``hotmesh.service._remote`` (as a node does when it is called) must
not shadow the package's own helper that reaches other nodes."""

from __future__ import annotations

import importlib

import pytest

import hotmesh.service
from hotmesh import HotmeshError


def test_remote_operations_still_work_after_the_remote_submodule_is_imported() -> None:
    importlib.import_module("hotmesh.service._remote")
    # With no node running, the call must get as far as looking for the node.
    with pytest.raises(HotmeshError, match="node"):
        hotmesh.service.service_call("demo", "ping", node="elsewhere@nowhere", timeout=0.1)
