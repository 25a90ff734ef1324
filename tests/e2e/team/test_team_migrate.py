"""``authsome migrate``: local -> team vault -> local, verified, source removed only afterwards."""

from __future__ import annotations

import json

from authsome.vault.sqlite_store import SqliteStore
from tests.conftest import canary_key
from tests.team.fixtures import TeamCLI


def _local_connections(home) -> list[tuple[str, str]]:
    store = SqliteStore(home / "vault.db", key_loader=None)
    try:
        return [(r.provider, r.connection) for r in store.list_connections()]
    finally:
        store.close()


def _secret(cli, provider, connection=None) -> str:
    args = ["get", provider, "--field", "api_key", "--show-secret"]
    if connection:
        args += ["--connection", connection]
    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _migrate_to_team_vault(cli, bao, prefix: str):
    """``migrate --to openbao`` with the root token on stdin (never in argv)."""
    return cli(
        "migrate",
        "--to",
        "openbao",
        "--url",
        bao.url,
        "--prefix",
        prefix,
        "--stdin",
        "--json",
        input=bao.root_token + "\n",
    )


def test_migrate_to_the_team_vault_and_back(tmp_path, bao, prefix):
    cli = TeamCLI(tmp_path / "home", bao, prefix)
    keys = {
        ("openai", None): canary_key(),
        ("openai", "work"): canary_key(),
        ("anthropic", None): canary_key("sk-ant-"),
    }
    cli.login_stdin("openai", keys[("openai", None)])
    cli.login_stdin("openai", keys[("openai", "work")], "--connection", "work")
    cli.login_stdin("anthropic", keys[("anthropic", None)])
    assert cli("set-default", "openai", "work").returncode == 0

    moved = _migrate_to_team_vault(cli, bao, prefix)
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout) == {
        "to": "openbao",
        "connections": 3,
        "client_configs": 0,
        "defaults": 2,
        "source_removed": True,
    }
    assert json.loads((cli.home / "config.json").read_text())["backend"] == "openbao"
    assert _local_connections(cli.home) == []  # removed from the local vault after verification
    assert sorted(bao.kv_list(f"{prefix}/openai")) == ["_default", "default", "work"]
    assert bao.kv_read(f"{prefix}/openai/_default")["data"]["connection"] == "work"
    assert _secret(cli, "openai") == keys[("openai", "work")]  # the default moved along
    assert _secret(cli, "openai", "default") == keys[("openai", None)]
    assert _secret(cli, "anthropic") == keys[("anthropic", None)]

    again = cli("migrate", "--to", "openbao", "--url", bao.url, "--json", input="x\n")
    assert again.returncode == 2  # already there: a usage error, nothing touched

    back = cli("migrate", "--to", "local", "--keep-source", "--json")
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["source_removed"] is False
    assert json.loads((cli.home / "config.json").read_text())["backend"] == "local"
    assert sorted(_local_connections(cli.home)) == [("anthropic", "default"), ("openai", "default"), ("openai", "work")]
    assert _secret(cli, "openai") == keys[("openai", "work")]
    assert bao.kv_read(f"{prefix}/openai/work") is not None  # --keep-source left the engine as it was


def test_migrate_stops_on_a_conflict_and_keeps_the_source(tmp_path, bao, prefix, team_cli_factory):
    other = team_cli_factory("other")
    other.login_stdin("openai", canary_key())  # the team vault already has openai (default), other content
    cli = TeamCLI(tmp_path / "home", bao, prefix)
    mine = canary_key()
    cli.login_stdin("openai", mine)
    proc = _migrate_to_team_vault(cli, bao, prefix)
    assert proc.returncode == 7, proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert error["type"] == "conflict" and "openai (default)" in error["message"]
    assert json.loads((cli.home / "config.json").read_text())["backend"] == "local"
    assert _secret(cli, "openai") == mine
