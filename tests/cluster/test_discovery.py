"""Seed providers with real nodes: the local registry (prefork), files, callables, DNS."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import hotmesh
from hotmesh.testing import LocalCluster

pytestmark = pytest.mark.cluster


@contextlib.contextmanager
def local_workers(size: int) -> Iterator[LocalCluster]:
    """``size`` nodes started at once, each seeded only with ``local:``."""
    cluster = LocalCluster(size, prefix="worker", tick=2.0)
    try:
        cluster.start_all(lambda i, endpoints: ["local:"])
        yield cluster
    except BaseException:
        cluster.close(failed=True)
        raise
    cluster.close()


def test_workers_of_one_host_seeded_with_local_form_one_mesh() -> None:
    # What prefork servers need: no worker knows another's port.
    with local_workers(4) as cluster:
        cluster.wait_full_mesh(timeout=20)


def test_a_seed_file_is_read_again_when_it_changes(
    start_node: Callable[..., hotmesh.Node], tmp_path: Path
) -> None:
    first = start_node("filed1")
    seeds = tmp_path / "seeds"
    second = start_node("filed2", seeds=[f"file:{seeds}"], join_timeout=0.1)
    assert second.nodes() == []
    seeds.write_text(f"# written by the deploy tool\n{first.endpoint}\n")
    assert second.wait_connected([first.name], timeout=10)
    assert first.wait_connected([second.name], timeout=5)


def test_callable_and_dns_seeds(start_node: Callable[..., hotmesh.Node]) -> None:
    first = start_node("anchor")
    port = first.endpoint.rsplit(":", 1)[1]
    asked: list[int] = []

    def seeds() -> list[str]:
        asked.append(1)
        return [first.endpoint]

    by_callable = start_node("called", seeds=[seeds])
    by_dns = start_node("resolved", seeds=[f"dns:localhost:{port}"])
    for node in (by_callable, by_dns):
        assert node.wait_connected([first.name], timeout=10), node.name
    assert asked
    assert by_dns.wait_connected([by_callable.name], timeout=10)


def test_a_bad_seed_is_refused_before_anything_opens() -> None:
    with pytest.raises(hotmesh.ConfigError, match="bad seed"):
        hotmesh.start("badseed", seeds=["10.0.0.5:7001"])
