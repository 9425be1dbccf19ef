"""The airbag seen from attached consoles (the real client over the mesh transport):
every console of a node gets a one-line notice when its window opens, is confirmed
or reverts (and why); the upgrade report's hint and confirm() work where they are
printed; hotmesh.deploy.confirm(nodes=...) confirms the fleet."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hotmesh._console import protocol
from hotmesh._console.client import ConsoleClient
from hotmesh.testing import LocalCluster
from tests.waiting import wait_until

pytestmark = pytest.mark.cluster
PKG = "hmairbag"


def write_release(directory: Path, version: str, price: str) -> None:
    """Release ``version`` of package hmairbag: prices.price() answers ``price``."""
    (directory / PKG).mkdir(parents=True, exist_ok=True)
    (directory / "hotmesh-release.toml").write_text(
        f'version = "{version}"\npackages = ["{PKG}"]\n'
    )
    (directory / PKG / "__init__.py").write_text("")
    (directory / PKG / "app.py").write_text(f"def start(node):\n    from {PKG} import prices\n")
    (directory / PKG / "prices.py").write_text(f"def price():\n    return {price}\n")
    shutil.rmtree(directory / PKG / "__pycache__", ignore_errors=True)


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[LocalCluster, list[Path]]]:
    dirs = [tmp_path / f"release-{i + 1}" for i in range(2)]
    for directory in dirs:
        write_release(directory, "v1", "1")
    with LocalCluster(2, tick=2.0, release=lambda i: dirs[i], app=f"{PKG}.app:start") as cluster:
        cluster.wait_full_mesh(timeout=15)
        yield cluster, dirs


class Console:
    """A real console session on a node that keeps the notices it is pushed."""

    def __init__(self, cluster: LocalCluster, index: int) -> None:
        self.notices: list[str] = []
        self.client = ConsoleClient.connect(
            cluster.node(index).endpoint, cluster.cookie, on_unsolicited=self._late
        )
        self.client.open()

    def _late(self, message: dict[str, Any]) -> None:
        if message.get("t") == protocol.NOTICE:
            self.notices.append(str(message["text"]))

    def run(self, code: str) -> str:
        out: list[str] = []
        outcome = self.client.execute(code, on_output=lambda name, text: out.append(text))
        assert outcome.ok, (outcome.exc_type, outcome.traceback)
        return "".join(out)

    def saw(self, *parts: str) -> bool:
        return any(all(p in n for p in parts) for n in self.notices)


@pytest.mark.timeout(90)
def test_airbag_notices_reach_every_console_and_confirm_works_where_it_is_printed(
    two: tuple[LocalCluster, list[Path]],
) -> None:
    cluster, dirs = two
    name, other = cluster.names
    here, watcher = Console(cluster, 0), Console(cluster, 0)
    elsewhere = Console(cluster, 1)
    try:
        for directory in dirs:
            write_release(directory, "v2", "2")
        # Opened, then reverted: both consoles of the node are told, and why.
        shown = here.run(
            "import hotmesh\nreport = hotmesh.deploy.upgrade_node(provisional=1.5)\nprint(report)"
        )
        assert f"confirm([{name!r}]) to keep" in shown, shown
        for console in (here, watcher):
            wait_until(
                lambda c=console: c.saw(name, "provisionally", "reverts to v1+", "1.5 s"),
                timeout=10,
                message="window opened notice",
            )
            wait_until(
                lambda c=console: c.saw(name, "reverted to v1+", "not confirmed within 1.5 s"),
                timeout=15,
                message="revert notice",
            )
        assert elsewhere.notices == []  # another node's console hears nothing of it

        # The printed hint, run where it was printed, keeps the upgrade.
        shown = here.run("print(hotmesh.deploy.upgrade_node(provisional=60))")
        hint = shown.split("provisional for 60 s: ")[1].split(" to keep")[0]
        assert "confirmed v2+" in here.run(f"print({hint})")
        wait_until(lambda: watcher.saw(name, "confirmed v2+"), timeout=10, message="confirmed")
        assert cluster.node(0).call(f"{PKG}.prices.price") == 2

        # confirm() is a console helper; hotmesh.deploy.confirm(nodes=...) does a fleet.
        assert "nothing to confirm" in here.run("print(confirm())")
        cluster.node(1).call("hotmesh.deploy.upgrade_node", provisional=60)
        wait_until(lambda: elsewhere.saw(other, "provisionally"), timeout=10, message="opened")
        fleet = here.run("print(sorted(hotmesh.deploy.confirm(nodes='all').items()))")
        assert f"({other!r}, 'confirmed v2+" in fleet, fleet
        wait_until(lambda: elsewhere.saw(other, "confirmed v2+"), timeout=10, message="fleet")
        assert cluster.node(1).call("hotmesh.deploy.node_status")["provisional_left"] is None
    finally:
        for console in (here, watcher, elsewhere):
            console.client.close()
