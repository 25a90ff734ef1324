"""Fixtures for the OAuth flow tests: a real authorization server (tests/oauth_server)."""

from tests.oauth_server.fixtures import browser, oauth_server, oauth_server_process  # noqa: F401
