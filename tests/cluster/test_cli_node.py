"""The hotmesh command: node (READY, signals), ls, ping, demo, help."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hotmesh.cli import build_parser

pytestmark = pytest.mark.cluster
HOTMESH = [sys.executable, "-m", "hotmesh"]


def run(
    *args: str, timeout: float = 30, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HOTMESH, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=env,
    )


class NodeCommand:
    """A ``hotmesh node`` process started by a test."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*HOTMESH, "node", "--tick", "1", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        self.ready_line = self.proc.stdout.readline().strip()

    def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            return self.proc.wait(10)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def node_command() -> Iterator[type[NodeCommand]]:
    started: list[NodeCommand] = []

    class Tracked(NodeCommand):
        def __init__(self, *args: str) -> None:
            super().__init__(*args)
            started.append(self)

    try:
        yield Tracked
    finally:
        for command in started:
            command.close()


def test_node_prints_ready_is_listed_answers_ping_and_stops_on_sigterm(
    node_command: type[NodeCommand],
) -> None:
    node = node_command("--name", "cli1")
    word, name, endpoint = node.ready_line.split()
    assert word == "READY" and name.startswith("cli1@") and endpoint.startswith("tcp://127.0.0.1:")

    listing = run("ls")
    assert listing.returncode == 0
    assert name in listing.stdout and endpoint in listing.stdout

    pong = run("ping", "cli1")
    assert pong.returncode == 0, pong.stderr
    assert f"pong from {name}" in pong.stdout
    assert run("ping", endpoint).returncode == 0

    assert node.stop(signal.SIGTERM) == 0
    assert name not in run("ls").stdout
    gone = run("ping", "cli1", "--timeout", "0.5")
    assert gone.returncode == 1
    assert "no pong" in gone.stderr


def test_node_stops_cleanly_on_sigint(node_command: type[NodeCommand]) -> None:
    node = node_command("--name", "cli-int")
    assert node.ready_line.startswith("READY ")
    assert node.stop(signal.SIGINT) == 0


def test_second_node_joins_through_seed_and_duplicate_name_is_refused(
    node_command: type[NodeCommand],
) -> None:
    first = node_command("--name", "cli-a")
    endpoint = first.ready_line.split()[2]
    second = node_command("--name", "cli-b", "--seed", endpoint)
    assert second.ready_line.startswith("READY cli-b@")
    duplicate = run("node", "--name", "cli-a", "--seed", endpoint)
    assert duplicate.returncode == 1
    assert "in use" in duplicate.stderr or "already" in duplicate.stderr
    assert "READY" not in duplicate.stdout


def test_ping_of_unknown_node_fails_with_reason() -> None:
    result = run("ping", "nobody-here")
    assert result.returncode == 1
    assert "no node nobody-here" in result.stderr


def test_versions_without_node_and_no_node_on_this_host_says_so(tmp_path: Path) -> None:
    cookie = tmp_path / "cookie"
    cookie.write_text("versions-cookie\n")
    cookie.chmod(0o600)
    result = run("versions", "--cookie-file", str(cookie))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "hotmesh versions: no hotmesh node runs on this host; name one (NODE)"
    )


def test_ls_without_nodes_says_so() -> None:
    result = run("ls")
    assert result.returncode == 0
    assert "no hotmesh node" in result.stdout


@pytest.mark.parametrize("command", ["node", "ls", "ping", "demo"])
def test_every_subcommand_has_help(command: str) -> None:
    result = run(command, "--help")
    assert result.returncode == 0
    assert "usage: hotmesh" in result.stdout


def test_python_dash_m_hotmesh_shows_help_without_command() -> None:
    result = run()
    assert result.returncode == 2
    assert "COMMAND" in result.stderr


def test_parser_lists_every_registered_subcommand() -> None:
    text = build_parser().format_help()
    for command in ("node", "ls", "ping", "demo"):
        assert command in text
    assert os.environ.get("HOTMESH_STATE_DIR")  # the conftest isolates the registry


def test_node_whose_app_cannot_be_found_exits_1_with_one_line() -> None:
    result = run("node", "--name", "cli-badapp", "--app", "os:no_such_function")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "hotmesh node: app 'os:no_such_function': os has no attribute 'no_such_function'"
    )
    assert "Traceback" not in result.stderr
    assert "READY" not in result.stdout


def test_node_whose_app_fails_exits_1_with_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "cli_failing_app_xyz.py").write_text(
        "def run(node):\n    raise RuntimeError('the app broke')\n"
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    result = run("node", "--name", "cli-badapp", "--app", "cli_failing_app_xyz:run", env=env)
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "RuntimeError: the app broke" in result.stderr
    assert "READY" not in result.stdout


def test_node_with_a_code_root_that_is_not_a_directory_exits_1(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-root"
    result = run("node", "--name", "cli-badroot", "--code-root", str(missing))
    assert result.returncode == 1
    assert f"code root '{missing}' is not a directory" in result.stderr
    assert "READY" not in result.stdout


def test_ping_finds_a_mesh_member_through_a_local_node(
    node_command: type[NodeCommand], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = node_command("--name", "cli-local")
    endpoint = local.ready_line.split()[2]
    # A member registered elsewhere (another host's registry, in effect).
    here = os.environ["HOTMESH_STATE_DIR"]
    monkeypatch.setenv("HOTMESH_STATE_DIR", str(tmp_path / "other-host"))
    remote = node_command("--name", "cli-remote", "--seed", endpoint)
    remote_name = remote.ready_line.split()[1]
    monkeypatch.setenv("HOTMESH_STATE_DIR", here)
    assert "cli-remote" not in run("ls").stdout
    result = run("ping", remote_name)
    assert result.returncode == 0, result.stderr
    assert f"pong from {remote_name}" in result.stdout
