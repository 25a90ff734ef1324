"""`authsome run` from the CLI: selection, placeholders, exit codes (the proxy itself: tests/proxy, tests/e2e/proxy)."""

import json

from tests.conftest import canary_key

ENV_DUMP = "import json, os; print(json.dumps(dict(os.environ)))"


def test_child_sees_placeholders_only(cli):
    key, anthropic = canary_key(), canary_key("sk-ant-")
    cli.login_stdin("openai", key)
    cli.login_stdin("anthropic", anthropic)
    proc = cli("run", "--", "python3", "-c", ENV_DUMP, env={"AUTHSOME_PASSPHRASE": "pw", "VAULT_TOKEN": "hvs.x",
                                                            "OPENAI_API_KEY": key})
    assert proc.returncode == 0, proc.stderr
    env = json.loads(proc.stdout)
    assert env["OPENAI_API_KEY"] == "authsome-proxy-managed"
    assert env["ANTHROPIC_API_KEY"] == "authsome-proxy-managed"
    assert "AUTHSOME_PASSPHRASE" not in env and "VAULT_TOKEN" not in env
    assert env["HTTPS_PROXY"].startswith("http://") and env["https_proxy"] == env["HTTPS_PROXY"]
    assert key not in proc.stdout + proc.stderr and anthropic not in proc.stdout + proc.stderr


def test_provider_selection_is_least_privilege(cli):
    cli.login_stdin("openai", canary_key())
    cli.login_stdin("anthropic", canary_key("sk-ant-"))
    proc = cli("run", "--provider", "openai", "--", "python3", "-c", ENV_DUMP)
    env = json.loads(proc.stdout)
    assert env["OPENAI_API_KEY"] == "authsome-proxy-managed"
    assert "ANTHROPIC_API_KEY" not in env


def test_exit_codes(cli):
    cli.login_stdin("openai", canary_key())
    assert cli("run", "--", "sh", "-c", "exit 3").returncode == 3
    assert cli("run", "--provider", "anthropic", "--", "true").returncode == 5
    assert cli("run", "--provider", "openai:nope", "--", "true").returncode == 3
    assert cli("run", "--provider", "nosuch", "--", "true").returncode == 3
    assert cli("run", "--", "definitely-not-a-command-xyz").returncode == 127


def test_nothing_connected_is_exit_5(cli):
    proc = cli("run", "--", "true")
    assert proc.returncode == 5 and "authsome login" in proc.stderr
