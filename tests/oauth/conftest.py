"""Fixtures for the OAuth flow tests: a real authorization server (tests/oauth_server)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "oauth_server"))

from oauth_test_server import OAuthTestServer, ServerNotAvailable  # noqa: E402


@pytest.fixture(scope="session")
def oauth_server_process():
    try:
        server = OAuthTestServer.start()
    except ServerNotAvailable as exc:
        if _in_ci():
            raise
        pytest.skip(f"authorization server unavailable: {exc}")
    yield server
    server.stop()


def _in_ci() -> bool:
    import os

    return bool(os.environ.get("CI"))


@pytest.fixture
def oauth_server(oauth_server_process):
    """The session's server, with its test configuration and counters reset for this test."""
    oauth_server_process.reset()
    yield oauth_server_process
    oauth_server_process.reset()


class BrowserInThread:
    """Plays the user's browser on a thread: approves each URL it is given."""

    def __init__(self, server: OAuthTestServer, *, tamper=None) -> None:
        self.server = server
        self.tamper = tamper
        self.urls: list[str] = []
        self.responses: list = []
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []

    def __call__(self, url: str) -> None:
        self.urls.append(url)
        thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self._threads.append(thread)
        thread.start()

    def _run(self, url: str) -> None:
        try:
            callback = self.server.authorize_until_callback(url)
            if self.tamper:
                callback = self.tamper(callback)
            self.responses.append(self.server.deliver(callback))
        except BaseException as exc:  # noqa: BLE001 - reported by join()
            self.errors.append(exc)

    def join(self, timeout: float = 30) -> None:
        for thread in self._threads:
            thread.join(timeout)
        if self.errors:
            raise self.errors[0]


@pytest.fixture
def browser(oauth_server):
    return BrowserInThread(oauth_server)
