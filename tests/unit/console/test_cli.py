"""Pieces of ``hotmesh attach/eval/run`` that need no node: arguments and history."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotmesh._mesh.cookie import cookie_fingerprint, load_cookie
from hotmesh.cli import build_parser, main
from hotmesh.cli.console import _history_file, _literal


def test_call_arguments_are_literals_when_they_parse() -> None:
    assert [_literal(t) for t in ["3", "'a b'", "[1, 2]", "None", "web2", "1+"]] == [
        3,
        "a b",
        [1, 2],
        None,
        "web2",
        "1+",
    ]


def test_run_takes_a_function_and_its_arguments() -> None:
    args = build_parser().parse_args(["run", "n1", "deploy.py", "--call", "go", "1", "x"])
    assert (args.node, args.file, args.call) == ("n1", Path("deploy.py"), ["go", "1", "x"])


def test_history_is_kept_per_cluster_cookie(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for path, secret in ((one, "cookie-one"), (two, "cookie-two")):
        path.write_text(secret)
        path.chmod(0o600)
    first, second = _history_file(str(one)), _history_file(str(two))
    assert first != second
    assert first.endswith(cookie_fingerprint(load_cookie(cookie_file=one)))
    assert Path(first).parent.is_dir()


@pytest.mark.parametrize(
    "command",
    [
        ["ping", "n1"],
        ["eval", "n1", "1"],
        ["attach", "n1"],
        ["status", "n1"],
        ["who", "n1"],
        ["versions", "n1"],
    ],
)
def test_client_commands_create_no_cookie_and_say_which_file_is_missing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    monkeypatch.delenv("HOTMESH_COOKIE_FILE", raising=False)
    monkeypatch.delenv("HOTMESH_COOKIE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    typo = tmp_path / "typo" / "prod.cookie"
    assert main([*command]) != 0
    assert main([*command, "--cookie-file", str(typo)]) != 0
    err = capsys.readouterr().err
    assert str(tmp_path / "home" / ".hotmesh.cookie") in err and str(typo) in err
    assert not (tmp_path / "home").exists() and not (tmp_path / "typo").exists()


LAYERS_A_CLIENT_NEEDS_NOT = (
    "hotmesh._node",
    "hotmesh._membership",
    "hotmesh._console.server",
    "hotmesh.code",
    "hotmesh.deploy",
    "hotmesh.service",
    "hotmesh.settings",
)


def test_attach_imports_none_of_the_node_layers(tmp_path: Path) -> None:
    """The attach path (parser, client, terminal front end) loads no node, code or
    deploy module: they cost a client a third of its start."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from hotmesh.cli import main\n"
        f"status = main(['attach', 'nosuch', '--cookie-file', {str(tmp_path / 'none')!r}])\n"
        "print(status, sorted(m for m in sys.modules if m.startswith('hotmesh')))\n"
    )
    env = {"HOTMESH_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    status, loaded = done.stdout.split(" ", 1)
    assert status == "2" and "cookie" in done.stderr  # it got as far as the cookie
    assert "hotmesh._console.repl" in loaded and "hotmesh._console.client" in loaded
    assert [m for m in LAYERS_A_CLIENT_NEEDS_NOT if f"'{m}" in loaded] == []
