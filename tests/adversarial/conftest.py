"""Fixtures of the adversarial suite."""

from __future__ import annotations

import pytest

from tests.secret_input.conftest import form_runs


@pytest.fixture
def form_run_factory():
    """A real browser-form capture in a thread (no browser); finished at teardown."""
    with form_runs("sk-teardownKEY0123456789abcdef") as start:
        yield start


from tests.oauth_server.fixtures import oauth_server, oauth_server_process  # noqa: E402,F401


@pytest.fixture
def oauth_cli(cli, oauth_server, tmp_path):  # noqa: F811 - fixture injection
    """The real CLI with a provider pointing at the real test authorization server (tests/oauth_server)."""
    from tests.e2e.oauth.conftest import OAuthCLI

    runner = OAuthCLI(cli, oauth_server, tmp_path)
    runner.register()
    return runner
