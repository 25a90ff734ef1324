"""pytest fixtures for the real authorization server; conftest files import them."""

from __future__ import annotations

import os

import pytest

from tests.oauth_server.oauth_test_server import BrowserInThread, OAuthTestServer, ServerNotAvailable


@pytest.fixture(scope="session")
def oauth_server_process():
    try:
        server = OAuthTestServer.start()
    except ServerNotAvailable as exc:
        if os.environ.get("CI"):
            raise  # in CI the setup script installs it: a missing server is a failure
        pytest.skip(f"authorization server unavailable: {exc}")
    yield server
    server.stop()


@pytest.fixture
def oauth_server(oauth_server_process):
    """The session's server, with its test configuration and counters reset for this test."""
    oauth_server_process.reset()
    yield oauth_server_process
    oauth_server_process.reset()


@pytest.fixture
def browser(oauth_server):
    return BrowserInThread(oauth_server)
