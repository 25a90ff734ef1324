"""The real ``authsome`` CLI on homes that share a team vault (a real OpenBao dev server)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from tests.conftest import AUTHSOME, canary_key
from tests.team.bao_server import agent_policy, free_port


def _json_error(proc) -> dict:
    return json.loads(proc.stdout)["error"]


def test_init_keeps_the_token_out_of_config_and_argv_and_whoami_hides_it(team_cli_factory, bao):
    cli = team_cli_factory("a")
    config_text = (cli.home / "config.json").read_text()
    config = json.loads(config_text)
    assert config["backend"] == "openbao"
    assert config["team"] == {"urls": [bao.url], "mount": "secret", "prefix": cli.prefix, "auth": "token"}
    for path in cli.home.iterdir():
        if path.is_file():
            assert bao.root_token.encode() not in path.read_bytes(), path  # sealed in the local vault
    whoami = cli("whoami", "--json")
    assert whoami.returncode == 0, whoami.stderr
    info = json.loads(whoami.stdout)
    assert info["backend"] == "openbao" and info["engine"] == bao.url
    assert info["path"] == f"secret/{cli.prefix}" and info["policies"] == ["root"]
    assert info["token_source"] == "stored token (local vault)"
    assert bao.root_token not in whoami.stdout + whoami.stderr
    env_whoami = json.loads(cli("whoami", "--json", env={"BAO_TOKEN": bao.root_token}).stdout)
    assert env_whoami["token_source"] == "BAO_TOKEN"


def test_init_refuses_a_bad_token_and_leaves_no_home(team_cli_factory, bao):
    cli = team_cli_factory("a", init=False)
    proc = cli.init_team("not-a-token", "--json")
    assert proc.returncode == 7, proc.stderr
    assert _json_error(proc)["type"] == "forbidden"
    assert "not-a-token" not in proc.stdout + proc.stderr
    assert not (cli.home / "config.json").exists()


def test_login_on_one_machine_is_read_on_another(team_cli_factory, bao):
    machine_a, machine_b = team_cli_factory("a"), team_cli_factory("b")
    key = canary_key()
    login = machine_a.login_stdin("openai", key)
    assert "Successfully logged in to openai (default)." in login.stderr
    shown = machine_b("get", "openai", "--field", "api_key", "--show-secret")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == key
    assert machine_b("get", "openai", "--field", "status").stdout.strip() == "connected"
    exported = machine_b("export", "openai", "--format", "json")
    assert json.loads(exported.stdout) == {"OPENAI_API_KEY": key}
    listed = machine_b("list", "--json", env={"AUTHSOME_NO_FASTPATH": "1"})
    rows = json.loads(listed.stdout)
    assert [(r["provider"], r["connection"], r["is_default"]) for r in rows] == [("openai", "default", True)]
    # The key sits in the engine, not on either machine's disk.
    for machine in (machine_a, machine_b):
        for path in machine.home.iterdir():
            if path.is_file():
                assert key.encode() not in path.read_bytes()
    assert bao.kv_read(f"{machine_a.prefix}/openai/default")["data"]["secrets"]["api_key"] == key
    logout = machine_b("logout", "openai")
    assert logout.returncode == 0, logout.stderr
    assert machine_a("get", "openai").returncode == 5


def test_list_on_a_team_home_shows_the_engine_connections(team_cli_factory, bao):
    cli = team_cli_factory("a")
    cli.login_stdin("openai", canary_key())
    listed = cli("list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [r["provider"] for r in json.loads(listed.stdout)] == ["openai"]
    # A token that may not list the prefix: a clear refusal, not an empty list.
    bao.put_policy(f"agent-{cli.prefix}", agent_policy(cli.prefix, "openai"))
    agent = team_cli_factory("agent", token=bao.create_token([f"agent-{cli.prefix}"]))
    refused = agent("list", "--json")
    assert refused.returncode == 7 and _json_error(refused)["type"] == "forbidden"
    # An unreachable engine: exit 7 naming the URL, not an empty list.
    config = json.loads((cli.home / "config.json").read_text())
    config["team"]["urls"] = [f"http://127.0.0.1:{free_port()}"]
    (cli.home / "config.json").write_text(json.dumps(config))
    down = cli("list", "--json")
    assert down.returncode == 7 and config["team"]["urls"][0] in _json_error(down)["message"]


def _wait_reading_stdin(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Block until ``proc`` sits in read(0, ...): it has read the store and now waits for the key."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            with open(f"/proc/{proc.pid}/syscall") as f:
                fields = f.read().split()
        except OSError:
            fields = []
        if len(fields) > 1 and fields[0] == "0" and int(fields[1], 16) == 0:
            return
        time.sleep(0.02)
    raise AssertionError("the login process never waited on stdin")


def test_racing_first_logins_one_wins_the_other_gets_a_conflict(team_cli_factory, bao):
    machine_a, machine_b = team_cli_factory("a"), team_cli_factory("b")
    key_a, key_b = canary_key(), canary_key()
    late = subprocess.Popen(
        [AUTHSOME, "login", "openai", "--stdin", "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=machine_b.env,
    )
    try:
        _wait_reading_stdin(late)  # b has seen "no connection" and waits for its key
        machine_a.login_stdin("openai", key_a)
        out, err = late.communicate(key_b + "\n", timeout=60)
    finally:
        if late.poll() is None:
            late.kill()
    assert late.returncode == 7, err
    error = json.loads(out)["error"]
    assert error["type"] == "conflict"
    assert "openai (default)" in error["message"] and "version 1" in error["message"]
    assert "nothing was written" in error["message"]
    assert key_b not in out + err
    stored = bao.kv_read(f"{machine_a.prefix}/openai/default")
    assert stored["data"]["secrets"]["api_key"] == key_a and stored["metadata"]["version"] == 1


def test_environment_token_wins_over_the_stored_one(team_cli_factory):
    cli = team_cli_factory("a")
    cli.login_stdin("openai", canary_key())
    proc = cli("get", "openai", "--field", "api_key", "--show-secret", "--json", env={"VAULT_TOKEN": "bogus-token"})
    assert proc.returncode == 7, proc.stderr
    assert _json_error(proc)["type"] == "forbidden"
    assert "bogus-token" not in proc.stdout + proc.stderr


def test_unreachable_engine_exits_7_naming_every_url(team_cli_factory, bao):
    cli = team_cli_factory("a")
    cli.login_stdin("openai", canary_key())
    config = json.loads((cli.home / "config.json").read_text())
    dead = [f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"]
    config["team"]["urls"] = dead
    (cli.home / "config.json").write_text(json.dumps(config))
    for args in (["get", "openai", "--json"], ["login", "anthropic", "--stdin", "--json"]):
        proc = cli(*args, input="sk-ant-whatever\n")
        assert proc.returncode == 7, (args, proc.stderr)
        error = _json_error(proc)
        assert error["type"] == "store" and all(url in error["message"] for url in dead), error
        assert "Traceback" not in proc.stderr
    # A live node after the dead ones: the command carries on.
    config["team"]["urls"] = [*dead, bao.url]
    (cli.home / "config.json").write_text(json.dumps(config))
    assert cli("get", "openai", "--field", "status").stdout.strip() == "connected"


def test_local_commands_never_load_the_team_client(tmp_path):
    from tests.conftest import CLI

    cli = CLI(tmp_path / "local")
    cli.login_stdin("openai", canary_key())
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: sys.stderr.write('TEAM=%s\\n' % ('authsome.vault.openbao_http' in sys.modules)))\n"
        "sys.argv = ['authsome'] + sys.argv[1:]\n"
        "from authsome.cli.entry import main\n"
        "main()\n"
    )
    python = str(__import__("pathlib").Path(AUTHSOME).with_name("python"))
    for args in (["get", "openai"], ["get", "openai", "--field", "api_key", "--show-secret"], ["list"]):
        proc = subprocess.run([python, "-c", probe, *args], capture_output=True, text=True, env=cli.env, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert "TEAM=False" in proc.stderr, (args, proc.stderr)


def test_run_on_another_machine_injects_from_the_engine_and_hides_engine_variables(team_cli_factory, bao):
    machine_a, machine_b = team_cli_factory("a"), team_cli_factory("b")
    key = canary_key()
    machine_a.login_stdin("openai", key)
    dump = "import json, os; print(json.dumps(dict(os.environ)))"
    engine_env = {"VAULT_TOKEN": bao.root_token, "BAO_TOKEN": bao.root_token, "VAULT_ADDR": bao.url}
    proc = machine_b("run", "--", sys.executable, "-c", dump, env=engine_env)
    assert proc.returncode == 0, proc.stderr
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not [name for name in child if name.startswith(("VAULT_", "BAO_"))]
    assert child["OPENAI_API_KEY"] == "authsome-proxy-managed"
    assert key not in proc.stdout + proc.stderr and bao.root_token not in proc.stdout
    # What the proxy would inject on machine b comes from the engine (the key machine a stored).
    probe = (
        "from authsome import Authsome\n"
        "from authsome.run_routes import routes_for\n"
        "import sys\n"
        "route = routes_for(Authsome(), [('openai', None)])[0]\n"
        "headers = dict(route.injection().headers)\n"
        "print(route.hosts, headers.get('Authorization') == 'Bearer ' + sys.stdin.read().strip())\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe], input=key, capture_output=True, text=True, env=machine_b.env, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "['api.openai.com'] True"


def test_offline_cache_serves_only_on_opt_in_and_says_so(team_cli_factory, bao):
    cli = team_cli_factory("a")
    key = canary_key()
    cli.login_stdin("openai", key)
    assert cli("get", "openai", "--field", "api_key", "--show-secret").stdout.strip() == key  # fills the cache
    for path in cli.home.iterdir():
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path  # the cache is sealed in the local vault
    config = json.loads((cli.home / "config.json").read_text())
    config["team"]["urls"] = [f"http://127.0.0.1:{free_port()}"]
    (cli.home / "config.json").write_text(json.dumps(config))
    args = ("get", "openai", "--field", "api_key", "--show-secret")
    assert cli(*args).returncode == 7  # no opt-in: the engine's outage is reported
    offline = cli(*args, env={"AUTHSOME_OFFLINE_OK": "1"})
    assert offline.returncode == 0, offline.stderr
    assert offline.stdout.strip() == key
    assert "offline cache" in offline.stderr and " s old" in offline.stderr
    never_fetched = cli("get", "anthropic", "--json", env={"AUTHSOME_OFFLINE_OK": "1"})
    assert never_fetched.returncode == 7, never_fetched.stderr
    # A refusal by the engine is never masked by the cache.
    config["team"]["urls"] = [bao.url]
    (cli.home / "config.json").write_text(json.dumps(config))
    refused = cli(*args, "--json", env={"AUTHSOME_OFFLINE_OK": "1", "VAULT_TOKEN": "bogus"})
    assert refused.returncode == 7 and _json_error(refused)["type"] == "forbidden"
