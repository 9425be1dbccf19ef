"""The one way cluster tests get node processes: ``local_cluster`` (processes on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from hotmesh.testing import LocalCluster


@contextmanager
def local_cluster(
    tmp_path_factory: pytest.TempPathFactory, size: int, *, prefix: str = "n", tick: float = 1.0
) -> Iterator[LocalCluster]:
    """``size`` node processes with a state dir (registry) of their own, fully meshed.

    For fixtures of any scope::

        @pytest.fixture(scope="module")
        def pair(tmp_path_factory):
            with local_cluster(tmp_path_factory, 2, prefix="con", tick=2.0) as cluster:
                yield cluster

    Every process is stopped on the way out, even when the block failed.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOTMESH_STATE_DIR", str(tmp_path_factory.mktemp(prefix) / "state"))
        with LocalCluster(size, prefix=prefix, tick=tick) as cluster:
            if size > 1:
                cluster.wait_full_mesh(timeout=15)
            yield cluster
