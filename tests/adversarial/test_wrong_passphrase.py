"""Passphrase mode: a wrong passphrase is refused (exit 7) and changes nothing."""

from __future__ import annotations

import pytest

from tests.conftest import canary_key


@pytest.fixture
def vault(cli):
    right = {"AUTHSOME_PASSPHRASE": canary_key("pass-")}
    assert cli("init", "--key-source", "passphrase", env=right).returncode == 0
    key = canary_key()
    assert cli("login", "openai", "--stdin", input=key + "\n", env=right).returncode == 0
    return cli, right, key


def still_intact(cli, right, key) -> None:
    read = cli("get", "openai", "--field", "api_key", "--show-secret", env=right)
    assert read.returncode == 0 and read.stdout.strip() == key, read.stderr
    assert cli("doctor", env=right).returncode == 0


@pytest.mark.parametrize(
    "argv",
    [
        ("login", "openai", "--stdin", "--force"),
        ("login", "openai", "--stdin", "--connection", "second"),
        ("get", "openai", "--field", "api_key", "--show-secret"),
        ("export", "openai"),
    ],
)
def test_wrong_passphrase_is_exit_7_and_changes_nothing(vault, argv):
    cli, right, key = vault
    wrong = {"AUTHSOME_PASSPHRASE": canary_key("pass-")}
    proc = cli(*argv, input=canary_key() + "\n", env=wrong)
    assert proc.returncode == 7, (argv, proc.returncode, proc.stderr)
    assert "passphrase" in proc.stderr.lower() and "Traceback" not in proc.stderr
    still_intact(cli, right, key)
    listed = cli("list", "--json", env=right)
    assert '"second"' not in listed.stdout


# Regression: remove and logout once deleted without loading the key, so with a wrong (or no) passphrase.
@pytest.mark.parametrize("argv", [("remove", "openai"), ("logout", "openai")])
def test_wrong_passphrase_cannot_delete(vault, argv):
    cli, right, key = vault
    proc = cli(*argv, env={"AUTHSOME_PASSPHRASE": canary_key("pass-")})
    assert proc.returncode == 7, (argv, proc.returncode, proc.stderr)
    still_intact(cli, right, key)
