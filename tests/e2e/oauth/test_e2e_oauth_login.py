"""`authsome login` with OAuth flows, as a subprocess, against the real authorization server."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tests.oauth_server.oauth_test_server import wait_until

CLIENT = ("--client-id", "authsome-public")


@contextmanager
def login_in_background(oauth_cli, *args: str) -> Iterator[subprocess.Popen]:
    """``authsome login localauth ARGS`` running, its stderr readable; killed if it still runs at exit."""
    process = subprocess.Popen(
        [*oauth_cli.command(), "login", "localauth", *args],
        env=oauth_cli.full_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def read_stderr_until(
    process: subprocess.Popen, wanted: Callable[[str], bool], timeout: float = 60
) -> tuple[str | None, str]:
    """Read stderr line by line until a ``wanted`` line, its end or the deadline: (that line or None, all read)."""
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen += line
        if wanted(line):
            return line, seen
    return None, seen


def test_pkce_login(oauth_cli):
    proc = oauth_cli.login(*CLIENT)
    assert proc.returncode == 0, proc.stderr
    assert "Successfully logged in to localauth (default)." in proc.stderr
    events = oauth_cli.browser_events()
    assert events[-1]["status"] == 200 and "Signed in" in events[-1]["page"]
    authorize = events[0]["authorize"]
    assert authorize in proc.stderr  # the URL is printed as well as opened
    assert "code_challenge_method=S256" in authorize

    listing = json.loads(oauth_cli("list", "--json").stdout)
    assert [(r["provider"], r["connection"], r["status"], r["auth_type"]) for r in listing] == [
        ("localauth", "default", "connected", "oauth2")
    ]
    assert listing[0]["scopes"] == ["openid", "read"] and listing[0]["expires_at"]

    tokens = oauth_cli.stored_tokens()
    assert set(tokens) == {"access_token", "refresh_token"}
    info = oauth_cli.server.introspect(tokens["access_token"])
    assert info["active"] is True and info["client_id"] == "authsome-public"
    for secret in tokens.values():  # no token on the terminal
        assert secret not in proc.stdout + proc.stderr

    exported = oauth_cli("export", "localauth", "--format", "json")
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout) == {"LOCALAUTH_TOKEN": tokens["access_token"]}
    assert tokens["refresh_token"] not in exported.stdout

    shown = oauth_cli("get", "localauth")
    assert "access_token: [redacted]" in shown.stdout and "refresh_token: [redacted]" in shown.stdout


def test_client_id_from_the_environment_and_stored_for_next_time(oauth_cli):
    proc = oauth_cli.login(env={"LOCALAUTH_CLIENT_ID": "authsome-public"})
    assert proc.returncode == 0, proc.stderr
    again = oauth_cli.login("--connection", "work")  # no --client-id, no variable: the stored client config
    assert again.returncode == 0, again.stderr
    assert oauth_cli.server.state()["counts"]["grants"] == {"authorization_code": 2}


def test_login_without_client_id_names_the_flag(oauth_cli):
    proc = oauth_cli.login()
    assert proc.returncode == 2
    assert "--client-id" in proc.stderr and "LOCALAUTH_CLIENT_ID" in proc.stderr
    assert oauth_cli.browser_events() == []


def test_device_code_login_approved_by_a_second_client(oauth_cli):
    with login_in_background(oauth_cli, "--flow", "device_code", *CLIENT) as process:
        _, seen = read_stderr_until(process, lambda line: "enter the code:" in line)
        user_code = re.search(r"enter the code: (\S+)", seen).group(1)
        assert f"{oauth_cli.server.issuer}/device" in seen
        # approve once the CLI is polling
        wait_until(
            lambda: oauth_cli.server.grant_errors().get(
                "urn:ietf:params:oauth:grant-type:device_code:authorization_pending"
            ),
            what="the CLI to poll",
        )
        page = oauth_cli.server.approve_device(user_code)
        assert "Sign-in Success" in page
        process.communicate(timeout=60)
    assert process.returncode == 0, seen
    record = oauth_cli.vault_record()
    assert record.flow == "device_code"
    assert oauth_cli.server.introspect(oauth_cli.stored_tokens()["access_token"])["active"] is True


def test_dcr_pkce_registers_once_and_reuses_the_client(oauth_cli):
    first = oauth_cli.login("--flow", "dcr_pkce")
    assert first.returncode == 0, first.stderr
    assert "Registered an OAuth client" in first.stderr
    second = oauth_cli.login("--flow", "dcr_pkce", "--connection", "work")
    assert second.returncode == 0, second.stderr
    assert "Registered" not in second.stderr
    counts = oauth_cli.server.state()["counts"]
    assert counts["registrations"] == 1
    assert counts["grants"] == {"authorization_code": 2}
    # the redirect URI registered is the one used
    authorize = oauth_cli.browser_events()[0]["authorize"]
    client_id = re.search(r"client_id=([^&]+)", authorize).group(1)
    assert client_id != "authsome-public"
    assert oauth_cli.server.introspect(oauth_cli.stored_tokens("work")["access_token"])["client_id"] == client_id


def test_denied_consent_exits_8_and_stores_nothing(oauth_cli):
    oauth_cli.server.configure(interaction="deny")
    proc = oauth_cli.login(*CLIENT)
    assert proc.returncode == 8, proc.stderr
    assert "denied" in proc.stderr
    assert json.loads(oauth_cli("list", "--json").stdout) == []
    assert oauth_cli.server.state()["counts"]["grants"] == {}


def test_wrong_state_exits_8_and_exchanges_nothing(oauth_cli):
    proc = oauth_cli.login(*CLIENT, mode="tamper-state")
    assert proc.returncode == 8, proc.stderr
    assert "state" in proc.stderr
    assert oauth_cli.browser_events()[-1]["status"] == 400
    assert oauth_cli.server.state()["counts"]["grants"] == {}
    assert json.loads(oauth_cli("list", "--json").stdout) == []


def test_replayed_code_is_refused(oauth_cli, tmp_path):
    first = oauth_cli.login(*CLIENT)
    assert first.returncode == 0, first.stderr
    recorded = tmp_path / "first-login.jsonl"
    recorded.write_text(oauth_cli.browser_log.read_text())
    # a later login receives the first login's code and state: refused before any exchange
    replay = oauth_cli.login(*CLIENT, "--connection", "second", mode=f"replay:{recorded}")
    assert replay.returncode == 8, replay.stderr
    assert oauth_cli.server.state()["counts"]["grants"] == {"authorization_code": 1}


def test_login_timeout_exits_8(oauth_cli):
    proc = oauth_cli.login(*CLIENT, "--timeout", "2", env={"BROWSER": "true"})
    assert proc.returncode == 8, proc.stderr
    assert "Timed out" in proc.stderr


def test_confidential_client_secret_from_env_is_stored_encrypted_and_reused(oauth_cli):
    from tests.oauth_server.oauth_test_server import CONFIDENTIAL_SECRET

    oauth_cli.register("confidential", client_secret_required=True)
    first = oauth_cli.login(
        "--client-id", "authsome-confidential", "--from-env",
        provider="confidential", env={"LOCALAUTH_CLIENT_SECRET": CONFIDENTIAL_SECRET},
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    # the next login needs neither the id nor the secret again: the stored client config has both
    second = oauth_cli.login("--connection", "work", provider="confidential")
    assert second.returncode == 0, second.stderr
    access = oauth_cli.vault_record("work", "confidential", secrets=True)[1]["access_token"]
    assert oauth_cli.server.introspect(access)["client_id"] == "authsome-confidential"
    # the secret is nowhere in plaintext: not on the terminal, the audit log or the vault file
    home = oauth_cli.cli.home
    for proc in (first, second):
        assert CONFIDENTIAL_SECRET not in proc.stdout + proc.stderr
    for path in home.rglob("*"):
        if path.is_file():
            assert CONFIDENTIAL_SECRET.encode() not in path.read_bytes(), path


def test_missing_client_secret_from_env_is_a_clear_error(oauth_cli):
    oauth_cli.register("confidential", client_secret_required=True)
    proc = oauth_cli.login("--client-id", "authsome-confidential", "--from-env", provider="confidential")
    assert proc.returncode == 5, proc.stderr
    assert "LOCALAUTH_CLIENT_SECRET" in proc.stderr
    assert oauth_cli.browser_events() == []


def test_no_browser_prints_the_url_to_open_elsewhere(oauth_cli):
    authorize = oauth_cli.server.issuer + "/auth?"
    with login_in_background(oauth_cli, "--no-browser", *CLIENT) as process:
        line, _ = read_stderr_until(process, lambda line: line.strip().startswith(authorize))
        assert line, "the authorization URL was not printed"
        response = oauth_cli.server.approve(line.strip())  # the user opens it in some browser
        assert response.status_code == 200
        process.communicate(timeout=60)
    assert process.returncode == 0
    assert oauth_cli.browser_events() == []  # $BROWSER was not used


def test_bundled_provider_without_client_id_says_where_to_get_one(cli):
    proc = cli("login", "github", "--flow", "pkce", env={"GITHUB_CLIENT_ID": ""})
    assert proc.returncode == 2, proc.stderr
    assert "--client-id" in proc.stderr and "GITHUB_CLIENT_ID" in proc.stderr
    assert "https://github.com/settings/developers" in proc.stderr


def test_scopes_option_is_used_and_checked(oauth_cli):
    proc = oauth_cli.login(*CLIENT, "--scopes", "openid,write")
    assert proc.returncode == 0, proc.stderr
    assert "scope=openid+write" in oauth_cli.browser_events()[0]["authorize"]
    assert oauth_cli("get", "localauth", "--field", "scopes").stdout.strip() == "openid write"
    bad = oauth_cli.login(*CLIENT, "--connection", "bad", "--scopes", "read write")
    assert bad.returncode == 2 and "not a valid OAuth scope" in bad.stderr
