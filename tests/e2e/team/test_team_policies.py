"""Least privilege and AppRole against a real engine: a host that may read only openai's connections."""

from __future__ import annotations

import json

from tests.conftest import canary_key
from tests.team.bao_server import agent_policy


def _error(proc) -> dict:
    return json.loads(proc.stdout)["error"]


def _init_with_approle(cli, bao, prefix: str, role_id: str, secret_id: str):
    """``init`` against ``bao`` with AppRole auth; the secret id only in the environment, as documented."""
    return cli(
        "init",
        "--backend",
        "openbao",
        "--url",
        bao.url,
        "--prefix",
        prefix,
        "--auth",
        "approle",
        "--role-id",
        role_id,
        "--json",
        env={"VAULT_SECRET_ID": secret_id},
    )


def test_agent_host_reads_only_its_path(team_cli_factory, bao):
    admin = team_cli_factory("admin")
    openai_key, anthropic_key = canary_key(), canary_key("sk-ant-")
    admin.login_stdin("openai", openai_key)
    admin.login_stdin("anthropic", anthropic_key)
    policy = f"agent-openai-{admin.prefix}"
    bao.put_policy(policy, agent_policy(admin.prefix, "openai"))
    agent = team_cli_factory("agent", token=bao.create_token([policy]))

    whoami = json.loads(agent("whoami", "--json").stdout)
    assert policy in whoami["policies"]
    assert whoami["connections"] == "not listable with this token"

    shown = agent("get", "openai", "--field", "api_key", "--show-secret")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == openai_key

    denied = [
        agent("get", "anthropic", "--field", "api_key", "--show-secret", "--json"),
        agent("export", "anthropic", "--json"),
        agent("login", "openai", "--force", "--stdin", "--json", input=canary_key() + "\n"),
        agent("login", "github", "--flow", "api_key", "--stdin", "--json", input="ghp_" + "a" * 36 + "\n"),
        agent("logout", "openai", "--json"),
        agent("list", "--json", env={"AUTHSOME_NO_FASTPATH": "1"}),  # see test_team_cli's list test
    ]
    for proc in denied:
        assert proc.returncode in (3, 7), proc.stderr
        assert "Traceback" not in proc.stderr and "unexpected" not in proc.stderr
        assert anthropic_key not in proc.stdout + proc.stderr
    for proc in denied[:3] + denied[4:]:
        error = _error(proc)
        assert error["type"] == "forbidden", error
        assert "refused" in error["message"] and error["hint"]
    # Nothing changed in the engine: the admin still reads both original keys.
    assert bao.kv_read(f"{admin.prefix}/openai/default")["metadata"]["version"] == 1
    assert admin("get", "anthropic", "--field", "api_key", "--show-secret").stdout.strip() == anthropic_key


def test_approle_host_logs_in_with_a_secret_id_from_the_environment(team_cli_factory, bao, prefix):
    admin = team_cli_factory("admin")
    key = canary_key()
    admin.login_stdin("openai", key)
    policy = f"agent-openai-{prefix}"
    bao.put_policy(policy, agent_policy(prefix, "openai"))
    role_id, secret_id = bao.approle(f"ci-{prefix}", [policy])

    ci = team_cli_factory("ci", init=False)
    init = _init_with_approle(ci, bao, prefix, role_id, secret_id)
    assert init.returncode == 0, init.stderr
    assert policy in json.loads(init.stdout)["policies"]
    assert secret_id not in (ci.home / "config.json").read_text()
    # Later commands log in again from the stored secret id, with no variable set.
    shown = ci("get", "openai", "--field", "api_key", "--show-secret")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == key
    info = json.loads(ci("whoami", "--json").stdout)
    assert info["auth"] == "approle" and info["role_id"] == role_id and policy in info["policies"]
    assert secret_id not in json.dumps(info)
    assert ci("get", "anthropic", "--json").returncode == 7
    # The cached AppRole token about to expire: the next command logs in again with the stored secret id.
    from authsome.home import Home
    from authsome.vault.local import open_local_store

    home = Home(ci.home)
    local = open_local_store(home, home.load_config())
    local.put_internal("team:approle-token", {"token": "expired-token", "expires_at": "0"})
    local.close()
    again = ci("get", "openai", "--field", "api_key", "--show-secret")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == key


def test_approle_with_a_wrong_secret_id_is_refused_at_init(team_cli_factory, bao, prefix):
    role_id, _secret_id = bao.approle(f"bad-{prefix}", ["default"])
    ci = team_cli_factory("ci", init=False)
    proc = _init_with_approle(ci, bao, prefix, role_id, "wrong-secret-id")
    assert proc.returncode == 7, proc.stderr
    assert "wrong-secret-id" not in proc.stdout + proc.stderr
    assert not (ci.home / "config.json").exists()
