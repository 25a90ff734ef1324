"""Shared fixtures: a throwaway AUTHSOME_HOME and a runner for the real installed CLI."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.adversarial import leakhook
from tests.adversarial.leakhook import (  # noqa: F401 - autouse fixture and session hooks of the leak scan
    leak_watch,
    pytest_sessionfinish,
    pytest_terminal_summary,
)

ROOT = Path(__file__).resolve().parent.parent
AUTHSOME = str(Path(sys.executable).with_name("authsome"))
# Variables that would make a test depend on the machine it runs on.
_SCRUB = ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER", "AUTHSOME_PASSPHRASE", "OPENAI_API_KEY", "NO_COLOR",
          "DBUS_SESSION_BUS_ADDRESS", "AUTHSOME_DEBUG")


def canary_key(prefix: str = "sk-") -> str:
    """A unique, valid-looking key so a leak of it can be found anywhere."""
    key = prefix + "canary" + secrets.token_hex(16)
    leakhook.register_canary(key)
    return key


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "authsome-home"
    monkeypatch.setenv("AUTHSOME_HOME", str(path))
    return path


class CLI:
    """Runs the installed ``authsome`` entry point as a user would."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
        self.env["AUTHSOME_HOME"] = str(home)

    def __call__(self, *args: str, input: str | None = None, env: dict | None = None, timeout: float = 60):
        full_env = dict(self.env, **(env or {}))
        proc = subprocess.run(
            [AUTHSOME, *args], input=input, capture_output=True, text=True, env=full_env, timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        leakhook.record_cli([AUTHSOME, *args], full_env, proc)
        return proc

    def login_stdin(self, provider: str, key: str, *extra: str):
        proc = self("login", provider, "--stdin", *extra, input=key + "\n")
        assert proc.returncode == 0, proc.stderr
        return proc


@pytest.fixture
def cli(home) -> CLI:
    return CLI(home)
