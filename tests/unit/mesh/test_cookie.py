"""The cluster cookie: precedence, creation, permissions, and the CURVE keys."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import zmq

from hotmesh import AuthError, CookieError
from hotmesh._mesh import cookie as cookie_mod
from hotmesh._mesh.cookie import cookie_fingerprint, curve_keypair, load_cookie, require_curve


def _write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_explicit_cookie_wins_over_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOTMESH_COOKIE", "from-env")
    assert load_cookie("explicit", _write(tmp_path / "c", "from-file")) == "explicit"


def test_cookie_file_argument_wins_over_env_cookie(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOTMESH_COOKIE", "from-env")
    assert load_cookie(cookie_file=_write(tmp_path / "c", "from-file")) == "from-file"


def test_env_cookie_wins_over_env_and_default_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTMESH_COOKIE", " from-env\n")
    assert load_cookie() == "from-env"


def test_cookie_file_argument_wins_over_env_file(tmp_path: Path) -> None:
    # conftest points $HOTMESH_COOKIE_FILE at a private file
    env_file = Path(os.environ["HOTMESH_COOKIE_FILE"])
    assert load_cookie(cookie_file=_write(tmp_path / "c", "arg-file\n")) == "arg-file"
    assert load_cookie() == env_file.read_text().strip()


def test_default_file_is_in_home_when_no_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOTMESH_COOKIE_FILE")
    monkeypatch.setenv("HOME", str(tmp_path))
    cookie = load_cookie()
    assert (tmp_path / ".hotmesh.cookie").read_text().strip() == cookie


def test_missing_file_is_created_with_mode_0600_and_parents(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "cookie"
    cookie = load_cookie(cookie_file=path)
    assert len(cookie) >= 40
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_cookie(cookie_file=path) == cookie
    assert [p.name for p in path.parent.iterdir()] == ["cookie"]


def test_making_a_cookie_file_is_logged_once_with_its_path(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hotmesh.mesh")
    path = tmp_path / "cookie"
    load_cookie(cookie_file=path)
    load_cookie(cookie_file=path)
    made = [r.getMessage() for r in caplog.records if "made one" in r.getMessage()]
    assert made == [
        f"no cookie file {path} (the cookie file option): made one with a new random "
        "secret (mode 600); only nodes and consoles holding that secret reach this node, "
        "so copy the cluster's cookie there instead if it should join an existing cluster"
    ]


def test_a_client_never_creates_the_cookie_and_names_the_missing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    typo = tmp_path / "no-such-dir" / "prod.cookie"
    with pytest.raises(CookieError, match="--cookie-file") as caught:
        load_cookie(cookie_file=typo, create=False)
    assert str(typo) in str(caught.value) and "the cookie file option" in str(caught.value)
    monkeypatch.delenv("HOTMESH_COOKIE_FILE")
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(CookieError, match="the default location"):
        load_cookie(create=False)
    assert list(tmp_path.iterdir()) == []


def test_processes_creating_the_cookie_at_once_agree(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "cookie"
    script = (
        "import sys\n"
        "from hotmesh._mesh.cookie import load_cookie\n"
        "print('READY', flush=True)\n"
        "sys.stdin.readline()\n"
        f"print(load_cookie(cookie_file={str(path)!r}), flush=True)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "HOTMESH_COOKIE"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(6)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline() == "READY\n"
        for proc in procs:  # release them as close together as we can
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        cookies = {proc.communicate(timeout=20)[0].strip() for proc in procs}
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert cookies == {path.read_text().strip()}
    assert all(proc.returncode == 0 for proc in procs)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602])
def test_file_accessible_by_others_is_refused_with_the_chmod_hint(
    tmp_path: Path, mode: int
) -> None:
    path = _write(tmp_path / "cookie", "secret", mode)
    with pytest.raises(CookieError) as info:
        load_cookie(cookie_file=path)
    message = str(info.value)
    assert str(path) in message
    assert f"{mode:04o}" in message
    assert f"chmod 600 {path}" in message


def test_owner_only_modes_are_accepted(tmp_path: Path) -> None:
    assert load_cookie(cookie_file=_write(tmp_path / "c", "secret", 0o400)) == "secret"


@pytest.mark.parametrize("text", ["", "  \n", "\n\n"])
def test_empty_cookie_file_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(CookieError, match="empty"):
        load_cookie(cookie_file=_write(tmp_path / "c", text))


def test_empty_explicit_or_env_cookie_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CookieError, match="cookie option is empty"):
        load_cookie(" ")
    monkeypatch.setenv("HOTMESH_COOKIE", "")
    with pytest.raises(CookieError, match=r"\$HOTMESH_COOKIE is empty"):
        load_cookie()


def test_directory_or_huge_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CookieError, match=r"not a regular file|cannot open"):
        load_cookie(cookie_file=tmp_path)
    with pytest.raises(CookieError, match="larger than"):
        load_cookie(cookie_file=_write(tmp_path / "big", "x" * 10_000))


def test_keypair_is_deterministic_valid_and_differs_per_cookie() -> None:
    public, secret = curve_keypair("cluster-a")
    assert (public, secret) == curve_keypair("cluster-a")
    assert len(public) == len(secret) == 40
    assert zmq.curve_public(secret) == public
    assert curve_keypair("cluster-b")[0] != public


def test_fingerprint_is_short_stable_and_hides_the_cookie() -> None:
    fingerprint = cookie_fingerprint("cluster-a")
    assert len(fingerprint) == 8 and int(fingerprint, 16) >= 0
    assert fingerprint == cookie_fingerprint("cluster-a") != cookie_fingerprint("cluster-b")
    assert "cluster" not in fingerprint


def test_curve_keys_authenticate_a_real_connection() -> None:
    public, secret = curve_keypair("cluster-a")
    ctx = zmq.Context()
    try:
        server = ctx.socket(zmq.PAIR)
        server.linger = 0
        server.curve_server = True
        server.curve_secretkey = secret
        port = server.bind_to_random_port("tcp://127.0.0.1")
        client = ctx.socket(zmq.PAIR)
        client.linger = 0
        client.curve_serverkey = public
        client.curve_publickey = public
        client.curve_secretkey = secret
        client.connect(f"tcp://127.0.0.1:{port}")
        client.send(b"hello")
        assert server.poll(5000) and server.recv() == b"hello"
    finally:
        ctx.destroy(linger=0)


def test_require_curve_explains_how_to_get_curve(monkeypatch: pytest.MonkeyPatch) -> None:
    require_curve()
    monkeypatch.setattr(cookie_mod.zmq, "has", lambda capability: False)
    with pytest.raises(AuthError, match=r"without CURVE.*PyPI wheel"):
        require_curve()


def test_symlink_is_followed_and_its_target_checked(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(_write(tmp_path / "target", "secret"))
    assert load_cookie(cookie_file=link) == "secret"
    (tmp_path / "target").chmod(0o644)
    with pytest.raises(CookieError, match="mode 0644"):
        load_cookie(cookie_file=link)
