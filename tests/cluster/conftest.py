"""Cluster fixtures: node processes on 127.0.0.1 (through LocalCluster) and in-process nodes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import hotmesh
from hotmesh.testing import LocalCluster
from tests.cluster.clusters import local_cluster
from tests.cluster.deploy_snippet import DRIVERS, TEMPLATE


@pytest.fixture(scope="module")
def mesh3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Three node processes (tick 1 s), fully meshed, shared by a module's read-only tests."""
    with local_cluster(tmp_path_factory, 3, tick=1.0) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def caller(mesh3: LocalCluster) -> hotmesh.Node:
    """An in-process node joined to ``mesh3`` (stopped with the cluster)."""
    return mesh3.client()


@pytest.fixture
def start_node() -> Iterator[Callable[..., hotmesh.Node]]:
    """Start in-process nodes (``hotmesh.start`` arguments); every one is stopped after the test."""
    nodes: list[hotmesh.Node] = []

    def start(name: str, **kwargs: Any) -> hotmesh.Node:
        kwargs.setdefault("tick", 1.0)
        node = hotmesh.start(name, **kwargs)
        nodes.append(node)
        return node

    try:
        yield start
    finally:
        for node in reversed(nodes):
            node.stop()


@pytest.fixture
def snippet(tmp_path: Path) -> dict[str, Any]:
    """The template plus the test drivers, defined as a console paste defines them."""
    path = tmp_path / "deploy_snippet.py"
    path.write_text(TEMPLATE.read_text() + DRIVERS)
    namespace: dict[str, Any] = {"__name__": "__console__"}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace
