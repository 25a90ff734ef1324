"""Exit codes, --json documents and error texts (DESIGN.md section 7)."""

import json
import sqlite3

import pytest

from tests.conftest import canary_key


def test_json_error_document(cli):
    proc = cli("get", "nosuchprovider", "--json")
    assert proc.returncode == 3
    doc = json.loads(proc.stdout)
    assert doc["error"]["code"] == 3 and doc["error"]["type"] == "unknown_provider"
    assert "nosuchprovider" in doc["error"]["message"]


@pytest.mark.parametrize("args,code", [
    (["get", "openai", "--show-secret"], 2),
    (["get", "openai", "--field", "api_key"], 2),
    (["get", "openai", "--connection", "nope"], 3),
    (["get", "openai", "--connection", "../etc"], 2),
    (["get", "../../etc/passwd"], 3),
    (["login", "openai", "--stdin", "--from-env"], 2),
    (["export", "openai", "--format", "xml"], 2),
    (["frobnicate"], 2),
])
def test_exit_codes(cli, args, code):
    cli.login_stdin("openai", canary_key())
    proc = cli(*args)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr


def test_click_usage_error_honours_json(cli):
    proc = cli("export", "openai", "--format", "xml", "--json")
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"]["code"] == 2


def test_list_json_shape(cli):
    cli.login_stdin("openai", canary_key())
    rows = json.loads(cli("list", "--json").stdout)
    assert len(rows) == 1
    row = rows[0]
    for key in ("provider", "connection", "status", "auth_type", "is_default", "created_at", "updated_at",
                "expires_at", "scopes"):
        assert key in row
    assert row["is_default"] is True and row["status"] == "connected"
    everything = json.loads(cli("list", "--all", "--json").stdout)
    assert len(everything) >= 60 and any(r["status"] == "available" for r in everything)


def test_get_json_redacts(cli):
    key = canary_key()
    cli.login_stdin("openai", key)
    proc = cli("get", "openai", "--json")
    doc = json.loads(proc.stdout)
    assert doc["api_key"] == "[redacted]" and key not in proc.stdout


def test_tampered_record_exits_7_without_traceback(cli):
    key = canary_key()
    cli.login_stdin("openai", key)
    cli.login_stdin("openai", canary_key(), "--connection", "b")
    db = sqlite3.connect(cli.home / "vault.db")
    a = db.execute("SELECT secrets FROM connections WHERE connection='default'").fetchone()[0]
    db.execute("UPDATE connections SET secrets=? WHERE connection='default'", (a.replace('"ct": "', '"ct": "AAAA'),))
    db.execute("UPDATE connections SET secrets=? WHERE connection='b'", (a,))  # swapped ciphertext
    db.commit()
    db.close()
    for conn in ("default", "b"):
        proc = cli("get", "openai", "--connection", conn, "--field", "api_key", "--show-secret")
        assert proc.returncode == 7, proc.stderr
        assert "Traceback" not in proc.stderr and key not in proc.stderr
    assert cli("get", "openai", "--field", "status").stdout == "connected\n"  # metadata still readable
    assert cli("doctor").returncode == 7


def test_truncated_database_exits_7(cli):
    cli.login_stdin("openai", canary_key())
    path = cli.home / "vault.db"
    data = path.read_bytes()
    path.write_bytes(data[:100])
    proc = cli("list")
    assert proc.returncode == 7 and "Error:" in proc.stderr and "Traceback" not in proc.stderr
    assert path.read_bytes() == data[:100]  # never reset


def test_damaged_config_exits_7(cli):
    cli.login_stdin("openai", canary_key())
    (cli.home / "config.json").write_text("{")
    proc = cli("get", "openai", "--field", "api_key", "--show-secret")
    assert proc.returncode == 7 and "config.json" in proc.stderr


def test_passphrase_mode(cli):
    env = {"AUTHSOME_PASSPHRASE": "correct horse battery"}
    assert cli("init", "--key-source", "passphrase", env=env).returncode == 0
    key = canary_key()
    assert cli("login", "openai", "--stdin", input=key + "\n", env=env).returncode == 0
    assert cli("get", "openai", "--field", "api_key", "--show-secret", env=env).stdout == key + "\n"
    wrong = cli("get", "openai", "--field", "api_key", "--show-secret", env={"AUTHSOME_PASSPHRASE": "nope"})
    assert wrong.returncode == 7 and "Wrong passphrase" in wrong.stderr
    assert cli("get", "openai", "--field", "status").stdout == "connected\n"  # metadata needs no key
    assert cli("get", "openai", "--field", "api_key", "--show-secret", env=env).stdout == key + "\n"
    whoami = json.loads(cli("whoami", "--json").stdout)
    assert whoami["key_source"] == "passphrase"


def test_permissions_are_private_whatever_the_umask(cli, tmp_path):
    import os
    import stat
    import subprocess

    from tests.conftest import AUTHSOME

    custom = tmp_path / "acme.json"
    custom.write_text(json.dumps({
        "name": "acme", "display_name": "Acme", "auth_type": "api_key", "flow": "api_key",
        "docs_url": "https://acme.example/docs", "hosts": ["api.acme.example"],
        "api_key": {"header_name": "Authorization", "header_prefix": "Bearer", "env_var": "ACME_API_KEY"},
    }))
    for args, stdin in ((["register", str(custom)], None), (["login", "openai", "--stdin"], canary_key() + "\n"),
                        (["export", "openai"], None)):
        subprocess.run([AUTHSOME, *args], input=stdin, text=True, env=cli.env, capture_output=True, check=True,
                       preexec_fn=lambda: os.umask(0), timeout=60)
    home = cli.home
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for path in home.rglob("*"):
        want = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == want, path
    assert cli("doctor").returncode == 0


def test_shell_completion_scripts(cli):
    for shell in ("bash", "zsh", "fish"):
        proc = cli(env={"_AUTHSOME_COMPLETE": f"{shell}_source"})
        assert proc.returncode == 0 and "authsome" in proc.stdout and len(proc.stdout) > 100, shell
    proc = cli(env={"_AUTHSOME_COMPLETE": "bash_complete", "COMP_WORDS": "authsome lo", "COMP_CWORD": "1"})
    assert "login" in proc.stdout and "logout" in proc.stdout and "log" in proc.stdout


@pytest.mark.parametrize("args,code", [
    (["set-default", "openai", "x"], 3),
    (["remove", "openai"], 5),
    (["revoke", "openai"], 5),
    (["logout", "openai"], 5),
    (["get", "openai"], 5),
    (["export", "openai"], 5),
])
def test_acting_on_a_fresh_home(cli, args, code):
    proc = cli(*args)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr and "bug" not in proc.stderr
