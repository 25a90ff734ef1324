"""Fixtures for the OAuth CLI tests: the real authorization server and the real ``authsome`` CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.oauth_server.fixtures import oauth_server, oauth_server_process  # noqa: F401

HERE = Path(__file__).resolve().parent
PROVIDER = "localauth"


class OAuthCLI:
    """The ``cli`` fixture plus a provider pointing at the test server and a scripted browser."""

    def __init__(self, cli, server, tmp_path: Path) -> None:
        self.cli = cli
        self.server = server
        self.tmp_path = tmp_path
        self.browser_log = tmp_path / "browser.jsonl"
        self.env = {
            "BROWSER": f"{sys.executable} {HERE / 'fake_browser.py'} %s",
            "FAKE_BROWSER_ISSUER": server.issuer,
            "FAKE_BROWSER_LOG": str(self.browser_log),
        }

    def register(self, name: str = PROVIDER, **kwargs) -> None:
        path = self.server.write_provider(self.tmp_path, name, **kwargs)
        proc = self.cli("register", str(path))
        assert proc.returncode == 0, proc.stderr

    def __call__(self, *args: str, env: dict | None = None, timeout: float = 90):
        return self.cli(*args, env=dict(self.env, **(env or {})), timeout=timeout)

    def login(self, *args: str, mode: str = "approve", provider: str = PROVIDER, **kwargs):
        env = dict(kwargs.pop("env", {}) or {}, FAKE_BROWSER_MODE=mode)
        return self("login", provider, *args, env=env, **kwargs)

    def browser_events(self, until_pages: set[str] | None = None, timeout: float = 30.0) -> list[dict]:
        """The browser's log; with ``until_pages``, wait (bounded) for it to log one of those pages or an
        error: the CLI can finish as soon as the callback is served, before the browser writes its last line."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            events = []
            if self.browser_log.exists():
                events = [json.loads(line) for line in self.browser_log.read_text().splitlines()]
            done = not until_pages or any(e.get("page") in until_pages or "error" in e for e in events)
            if done or time.monotonic() >= deadline:
                return events
            time.sleep(0.05)

    def command(self) -> list[str]:
        from tests.conftest import AUTHSOME

        return [AUTHSOME]

    def full_env(self, **extra: str) -> dict:
        return dict(self.cli.env, **self.env, **extra)

    def vault_record(self, connection: str = "default", provider: str = PROVIDER, *, secrets: bool = False):
        """The stored record (and its opened secrets), read with the library: no refresh."""
        from authsome.client import Authsome

        client = Authsome(self.cli.home)
        try:
            record = client.store.get_connection(provider, connection)
            return (record, record.secrets() if record else {}) if secrets else record
        finally:
            client.close()

    def stored_tokens(self, connection: str = "default") -> dict[str, str]:
        return self.vault_record(connection, secrets=True)[1]


@pytest.fixture
def oauth_cli(cli, oauth_server, tmp_path):  # noqa: F811 - fixture injection
    runner = OAuthCLI(cli, oauth_server, tmp_path)
    runner.register()
    return runner
