"""A real terminal for tests: a program run in a tmux server of its own (processes).

Each ``Terminal`` starts a private tmux server (``tmux -L <unique socket>``),
so tests never touch an engineer's tmux, and ``close`` kills only that server
and what runs in it.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence

import pytest

from tests.waiting import wait_until


class Terminal:
    """One program in a tmux pane; read the screen, type keys."""

    def __init__(
        self, argv: Sequence[str], env: Mapping[str, str], *, width: int = 120, height: int = 40
    ) -> None:
        if shutil.which("tmux") is None:
            pytest.skip("tmux is not installed: the real-terminal tests need it")
        self.socket = f"hotmesh-test-{os.getpid()}-{secrets.token_hex(4)}"
        # The shell line keeps the pane open after the program ends and shows
        # its exit status, which the test can read.
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        line = f"env {exports} {shlex.join(argv)}; echo EXIT-STATUS=$?; sleep 600"
        self._tmux("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), line)

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        return done.stdout

    def keys(self, *keys: str) -> None:
        """Type ``keys`` (tmux key names: ``Enter``, ``C-c``, ``C-d``; or literal text)."""
        self._tmux("send-keys", "-t", "t", *keys)

    def text(self, line: str) -> None:
        """Type ``line`` literally, then Enter."""
        self._tmux("send-keys", "-t", "t", "-l", line)
        self._tmux("send-keys", "-t", "t", "Enter")

    def screen(self) -> str:
        """The pane's text with its scrollback."""
        return self._tmux("capture-pane", "-p", "-J", "-S", "-2000", "-t", "t")

    def wait_for(self, pattern: str, *, timeout: float = 20.0, count: int = 1) -> str:
        """Wait until ``pattern`` (a regex) shows ``count`` times; returns the screen.

        Raises:
            AssertionError: not within ``timeout`` (with the screen in the message).
        """
        seen = [""]

        def shown() -> str | None:
            seen[0] = self.screen()
            return seen[0] if len(re.findall(pattern, seen[0])) >= count else None

        try:
            return wait_until(shown, timeout=timeout, interval=0.1)
        except AssertionError:
            raise AssertionError(
                f"{pattern!r} not on the screen within {timeout}s:\n{seen[0]}"
            ) from None

    def close(self) -> None:
        """Kill this terminal's tmux server and the program in it."""
        self._tmux("kill-server")
