"""Shared test configuration: every test gets a private state dir and cookie."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_state(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Point hotmesh's state dir and cookie file at a per-test temp directory."""
    root = tmp_path_factory.mktemp("hotmesh-state")
    monkeypatch.setenv("HOTMESH_STATE_DIR", str(root / "state"))
    cookie = root / "cookie"
    cookie.write_text("test-cookie-" + os.urandom(8).hex() + "\n")
    cookie.chmod(0o600)
    monkeypatch.setenv("HOTMESH_COOKIE_FILE", str(cookie))
    monkeypatch.delenv("HOTMESH_COOKIE", raising=False)
    return root
