"""Single-flight OAuth refresh across machines: the engine lease, against real OpenBao and a real OAuth server."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from authsome.errors import StoreLockedError
from authsome.flows.oauth_records import token_secrets
from authsome.home import Home
from authsome.vault.backend import open_store
from authsome.vault.team_init import initialize_team_home, team_settings
from tests.oauth_server.oauth_test_server import pkce_tokens
from tests.team.lease_relay import LeaseRelay

WORKER = Path(__file__).with_name("team_refresh_worker.py")


def _homes(tmp_path, bao, prefix, url):
    made = []
    for name in ("machine-a", "machine-b"):
        home = Home(tmp_path / name)
        team = team_settings([url], None, prefix, None, None)
        initialize_team_home(home, team, {"token": bao.root_token}, key_source="file")
        made.append(home)
    return made


@pytest.fixture
def homes(tmp_path, bao, prefix):
    """Two homes ('machines') sharing one team vault prefix; returns their Home objects."""
    return _homes(tmp_path, bao, prefix, bao.url)


def _store(home):
    return open_store(home, home.load_config())


def test_lease_excludes_a_second_holder_until_released(homes):
    a, b = _store(homes[0]), _store(homes[1])
    try:
        a.put_connection(
            provider="acme",
            connection="default",
            auth_type="oauth2",
            flow="pkce",
            status="connected",
            secrets={"access_token": "x"},
        )
        order = []
        with a.refresh_lease("acme", "default"):

            def contender():
                with b.refresh_lease("acme", "default", wait_seconds=20):
                    order.append("b")

            thread = threading.Thread(target=contender)
            thread.start()
            time.sleep(0.5)  # b polls the held lease meanwhile
            order.append("a")
        thread.join(timeout=30)
        assert order == ["a", "b"]
    finally:
        a.close()
        b.close()


def test_a_dead_holders_lease_expires_and_a_live_one_times_out(homes):
    a, b = _store(homes[0]), _store(homes[1])
    try:
        dead = a.refresh_lease("acme", "default", lease_seconds=1.5)
        dead.__enter__()  # a holder that dies: never released
        with pytest.raises(StoreLockedError) as err:
            with b.refresh_lease("acme", "default", wait_seconds=0.5):
                pass
        assert err.value.exit_code == 7 and "acme (default)" in err.value.message
        started = time.monotonic()
        with b.refresh_lease("acme", "default", wait_seconds=20):
            assert time.monotonic() - started < 20
    finally:
        a.close()
        b.close()


def test_eight_processes_on_two_machines_refresh_a_rotating_token_once(bao, prefix, oauth_server, tmp_path):
    with LeaseRelay(bao.url) as relay:  # holds both machines' first claims until they collide
        _race(_homes(tmp_path, bao, prefix, relay.url), oauth_server, tmp_path)
    assert len(relay.held_cas) == 2 and relay.held_cas[0] == relay.held_cas[1], relay.held_cas


def _race(homes, oauth_server, tmp_path):
    oauth_server.configure(access_token_ttl=120)  # inside the 5-minute refresh window
    tokens = pkce_tokens(oauth_server)
    oauth_server.configure(access_token_ttl=3600)
    store = _store(homes[0])
    store.put_connection(
        provider="localauth",
        connection="default",
        auth_type="oauth2",
        flow="pkce",
        status="connected",
        secrets=token_secrets(tokens),
        expires_at=tokens.expires_at,
        scopes=list(tokens.scopes),
        metadata={"client_id": "authsome-public"},
        expected_version=0,
    )
    start = tmp_path / "start"
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(homes[i % 2].path), oauth_server.issuer, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    time.sleep(1.0)  # let every worker import and wait on the start file
    start.write_text("go")
    results, errors = [], []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        results.append(out.strip())
        errors.append(err)
    assert not [r for r in results if r.startswith("ERROR")], (results, errors)
    assert len(set(results)) == 1  # every process ends with the same, new access token
    assert oauth_server.refresh_grants == 1  # the rotating refresh token was spent exactly once
    assert not oauth_server.grant_errors()  # no invalid_grant, no grant revoked
    record = store.get_connection("localauth", "default")
    assert record.version == 2 and record.status == "connected"
    assert record.secret("refresh_token") != tokens.refresh_token
    store.close()
