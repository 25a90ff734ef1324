"""pytest fixtures for the team-vault tests; conftest files import them."""

from __future__ import annotations

import secrets

import pytest

from tests.conftest import CLI
from tests.team.bao_server import DevServer


@pytest.fixture(scope="session")
def bao(tmp_path_factory):
    """One real dev server per test worker (tests keep apart by prefix)."""
    server = DevServer(tmp_path_factory.mktemp("bao") / "bao-dev.log")
    yield server
    server.stop()


@pytest.fixture
def prefix() -> str:
    return "t-" + secrets.token_hex(6)


class TeamCLI(CLI):
    """The real CLI on a home that uses the team vault (VAULT_*/BAO_* scrubbed from its environment)."""

    def __init__(self, home, bao, prefix) -> None:
        super().__init__(home)
        for name in list(self.env):
            if name.startswith(("VAULT_", "BAO_")):
                del self.env[name]
        self.bao = bao
        self.prefix = prefix

    def init_team(self, token: str, *extra: str, urls=None):
        args = ["init", "--backend", "openbao", "--prefix", self.prefix, "--stdin"]
        for url in urls or [self.bao.url]:
            args += ["--url", url]
        return self(*args, *extra, input=token + "\n")


@pytest.fixture
def team_cli_factory(tmp_path, bao, prefix):
    """``make(name, token=root)``: a CLI on a new home (a 'machine') sharing this test's prefix."""

    def make(name: str = "machine-a", token: str | None = None, init: bool = True) -> TeamCLI:
        cli = TeamCLI(tmp_path / name, bao, prefix)
        if init:
            proc = cli.init_team(token or bao.root_token)
            assert proc.returncode == 0, proc.stderr
        return cli

    return make
