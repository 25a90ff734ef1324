"""Refresh on read, single flight across CLI processes, refusal and transient failure, revocation."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CLIENT = ("--client-id", "authsome-public")
READ_TOKEN = ("get", "localauth", "--field", "access_token", "--show-secret")


@pytest.fixture
def near_expiry(oauth_cli):
    """A connection whose access token expires within the 5-minute refresh window."""
    oauth_cli.server.configure(access_token_ttl=120)
    proc = oauth_cli.login(*CLIENT)
    assert proc.returncode == 0, proc.stderr
    oauth_cli.server.configure(access_token_ttl=3600)
    return oauth_cli


def test_reading_a_token_near_expiry_refreshes_and_rotates(near_expiry):
    cli, server = near_expiry, near_expiry.server
    before = cli.stored_tokens()
    read = cli(*READ_TOKEN)
    assert read.returncode == 0, read.stderr
    after = cli.stored_tokens()
    assert read.stdout.strip() == after["access_token"] != before["access_token"]
    assert after["refresh_token"] != before["refresh_token"]  # rotated, and stored
    assert server.refresh_grants == 1
    assert server.introspect(after["access_token"])["active"] is True
    assert server.introspect(before["refresh_token"]) == {"active": False}  # spent
    # now far from expiry: the next read does not touch the server
    again = cli(*READ_TOKEN)
    assert again.stdout == read.stdout and server.refresh_grants == 1
    # export and the library's headers refresh the same way: nothing more to do now
    assert json.loads(cli("export", "localauth", "--format", "json").stdout)["LOCALAUTH_TOKEN"] == after["access_token"]


def test_metadata_reads_never_refresh(near_expiry):
    for args in (("list",), ("get", "localauth"), ("get", "localauth", "--field", "status")):
        assert near_expiry(*args).returncode == 0
    assert near_expiry.server.refresh_grants == 0


def test_eight_processes_racing_refresh_exactly_once(near_expiry):
    cli, server = near_expiry, near_expiry.server
    processes = [
        subprocess.Popen(
            [*cli.command(), *READ_TOKEN],
            env=cli.full_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    results = [(p.communicate(timeout=120), p.returncode) for p in processes]
    assert [code for _, code in results] == [0] * 8, [err for (_, err), _ in results]
    tokens = {out.strip() for (out, _), _ in results}
    assert tokens == {cli.stored_tokens()["access_token"]}
    assert server.refresh_grants == 1
    assert not [key for key in server.grant_errors() if key.startswith("refresh_token:")]
    assert server.introspect(tokens.pop())["active"] is True


def test_revoked_refresh_token_marks_expired_and_exits_6(near_expiry):
    cli, server = near_expiry, near_expiry.server
    stored = cli.stored_tokens()
    # the user revokes the app at the provider
    response = server._http.post(
        "/token/revocation", data={"token": stored["refresh_token"], "client_id": "authsome-public"}
    )
    assert response.status_code == 200
    read = cli(*READ_TOKEN)
    assert read.returncode == 6, read.stderr
    assert "authsome login localauth --force" in read.stderr
    assert read.stdout == ""
    assert stored["refresh_token"] not in read.stderr and stored["access_token"] not in read.stderr
    assert cli("get", "localauth", "--field", "status").stdout.strip() == "expired"
    listing = json.loads(cli("list", "--json").stdout)
    assert listing[0]["status"] == "expired"
    # later reads fail at once, without spending anything at the server
    errors_before = server.grant_errors()
    again = cli(*READ_TOKEN, "--json")
    assert again.returncode == 6
    assert json.loads(again.stdout)["error"]["type"] == "token_expired"
    assert server.grant_errors() == errors_before
    # logging in again (with --force, as the hint says) recovers
    assert cli.login(*CLIENT, "--force").returncode == 0
    assert cli("get", "localauth", "--field", "status").stdout.strip() == "connected"


def test_transient_failure_exits_6_and_keeps_tokens_and_status(near_expiry):
    cli, server = near_expiry, near_expiry.server
    before = cli.stored_tokens()
    server.configure(fail_token=1)
    read = cli(*READ_TOKEN)
    assert read.returncode == 6, read.stderr
    assert "Retry" in read.stderr
    assert cli.stored_tokens() == before
    assert cli("get", "localauth", "--field", "status").stdout.strip() == "connected"
    retry = cli(*READ_TOKEN)
    assert retry.returncode == 0, retry.stderr
    assert server.refresh_grants == 1


def test_revoke_makes_introspection_report_inactive(oauth_cli):
    assert oauth_cli.login(*CLIENT).returncode == 0
    tokens = oauth_cli.stored_tokens()
    server = oauth_cli.server
    assert server.introspect(tokens["access_token"])["active"] is True
    proc = oauth_cli("revoke", "localauth")
    assert proc.returncode == 0, proc.stderr
    assert server.introspect(tokens["access_token"]) == {"active": False}
    assert server.introspect(tokens["refresh_token"]) == {"active": False}
    assert server.state()["counts"]["revocations"] == 2
    assert json.loads(oauth_cli("list", "--json").stdout) == []


def test_revoke_that_fails_keeps_local_state(oauth_cli, tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    oauth_cli.register("deadrevoke", revocation_url=f"http://127.0.0.1:{dead}/revoke")
    assert oauth_cli.login(*CLIENT, provider="deadrevoke").returncode == 0
    proc = oauth_cli("revoke", "deadrevoke")
    assert proc.returncode != 0
    assert "nothing was deleted" in proc.stderr
    assert oauth_cli("get", "deadrevoke", "--field", "status").stdout.strip() == "connected"


def test_logout_keeps_the_token_valid_at_the_provider(oauth_cli):
    assert oauth_cli.login(*CLIENT).returncode == 0
    access = oauth_cli.stored_tokens()["access_token"]
    assert oauth_cli("logout", "localauth").returncode == 0
    assert oauth_cli.server.introspect(access)["active"] is True
    assert oauth_cli.server.state()["counts"]["revocations"] == 0


def test_revoke_without_a_revocation_endpoint_removes_local_state(oauth_cli):
    oauth_cli.register("norevoke", revocation_url=None)
    assert oauth_cli.login(*CLIENT, provider="norevoke").returncode == 0
    proc = oauth_cli("revoke", "norevoke")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(oauth_cli("list", "--json").stdout) == []


def test_reads_far_from_expiry_do_not_load_the_oauth_stack(oauth_cli):
    assert oauth_cli.login(*CLIENT).returncode == 0
    script = (
        "import sys, json\n"
        "from authsome.client import Authsome\n"
        "client = Authsome()\n"
        "client.list_connections(); client.get_metadata('localauth')\n"
        "client.get_secret('localauth'); client.auth_headers('localauth')\n"
        "print(json.dumps(sorted(m for m in ('authlib', 'httpx', 'httpx2') if m in sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], env=oauth_cli.full_env(), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
    assert oauth_cli.server.refresh_grants == 0


def test_base_url_templated_provider_logs_in_and_refreshes_at_that_base(oauth_cli):
    server = oauth_cli.server
    oauth_cli.register(
        "selfhosted",
        flows=["device_code"],
        authorization_url="{base_url}/auth",
        token_url="{base_url}/token",
        device_authorization_url="{base_url}/device/auth",
        registration_url=None,
        revocation_url="{base_url}/token/revocation",
        base_url_default="https://selfhosted.invalid",
    )
    server.configure(access_token_ttl=120)
    proc = oauth_cli.login(*CLIENT, "--base-url", server.issuer + "/", provider="selfhosted")
    assert proc.returncode == 0, proc.stderr
    server.configure(access_token_ttl=3600)
    record = oauth_cli.vault_record(provider="selfhosted")
    assert record.metadata["base_url"] == server.issuer
    # the refresh goes to the base URL the connection was made with, not the default
    read = oauth_cli("get", "selfhosted", "--field", "access_token", "--show-secret")
    assert read.returncode == 0, read.stderr
    assert server.refresh_grants == 1
    assert server.introspect(read.stdout.strip())["active"] is True
