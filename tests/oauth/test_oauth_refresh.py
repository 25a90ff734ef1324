"""Refresh with rotation, refusal versus transient failure, and single flight across processes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from authsome.flows.refresh import (
    RefreshRefusedError,
    RefreshUnavailableError,
    refresh_single_flight,
    refresh_tokens,
)
from authsome.flows.tokens import ClientConfig, TokenSet
from authsome.vault.locks import connection_lock
from tests.oauth_server.oauth_test_server import endpoints_for, pkce_tokens

WORKER = Path(__file__).with_name("refresh_race_worker.py")
LOGIN = "authsome login localauth"


def refresh(server, tokens):
    return refresh_tokens(
        endpoints_for(server), ClientConfig("authsome-public"), tokens, label="localauth (default)", login_command=LOGIN
    )


def test_refresh_rotates_the_refresh_token(oauth_server):
    tokens = pkce_tokens(oauth_server)
    fresh = refresh(oauth_server, tokens)
    assert fresh.access_token != tokens.access_token
    assert fresh.refresh_token and fresh.refresh_token != tokens.refresh_token
    assert fresh.scopes == tokens.scopes
    assert oauth_server.introspect(fresh.access_token)["active"] is True
    assert oauth_server.refresh_grants == 1
    # the spent refresh token is refused: that is why refresh must be single flight
    with pytest.raises(RefreshRefusedError) as caught:
        refresh(oauth_server, tokens)
    assert caught.value.exit_code == 6
    assert "invalid_grant" in caught.value.message
    assert LOGIN in caught.value.hint
    assert tokens.refresh_token not in caught.value.message + caught.value.hint


def test_transient_failure_keeps_tokens_and_says_retry(oauth_server):
    tokens = pkce_tokens(oauth_server)
    oauth_server.configure(fail_token=1)
    with pytest.raises(RefreshUnavailableError) as caught:
        refresh(oauth_server, tokens)
    assert caught.value.exit_code == 6
    assert "unchanged" in caught.value.message and "Retry" in caught.value.hint
    # the refresh token was not spent: it still works
    assert refresh(oauth_server, tokens).access_token


def test_unreachable_server_is_transient(oauth_server):
    tokens = pkce_tokens(oauth_server)
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = endpoints_for(oauth_server, token_url=f"http://127.0.0.1:{port}/token")
    with pytest.raises(RefreshUnavailableError):
        refresh_tokens(dead, ClientConfig("authsome-public"), tokens, label="x (default)", login_command=LOGIN)


class FileStore:
    """A stand-in for the vault record, as the race worker uses it."""

    def __init__(self, directory: Path, tokens: TokenSet) -> None:
        self.directory = directory
        self.path = directory / "tokens.json"
        self.save(tokens)

    def load(self) -> TokenSet:
        data = json.loads(self.path.read_text())
        data["scopes"] = tuple(data["scopes"])
        return TokenSet(**data)

    def save(self, tokens: TokenSet) -> None:
        self.path.write_text(json.dumps(dataclasses.asdict(tokens)))

    @property
    def expired(self) -> bool:
        return (self.directory / "expired").exists()

    def mark_expired(self) -> None:
        (self.directory / "expired").write_text("1")


def refresh_via_store(server, store: FileStore) -> TokenSet:
    return refresh_single_flight(
        load=store.load,
        refresh=lambda tokens: refresh(server, tokens),
        save=store.save,
        mark_expired=store.mark_expired,
        lock=lambda: connection_lock(store.directory, "localauth", "default"),
    )


def test_no_refresh_when_far_from_expiry(oauth_server, tmp_path):
    store = FileStore(tmp_path, pkce_tokens(oauth_server))  # 3600 s tokens
    assert refresh_via_store(oauth_server, store).access_token == store.load().access_token
    assert oauth_server.refresh_grants == 0


def test_refresh_within_five_minutes_of_expiry_is_saved_before_use(oauth_server, tmp_path):
    oauth_server.configure(access_token_ttl=120)
    store = FileStore(tmp_path, pkce_tokens(oauth_server))
    oauth_server.configure(access_token_ttl=3600)
    old = store.load()
    fresh = refresh_via_store(oauth_server, store)
    assert fresh.access_token != old.access_token
    assert store.load() == fresh  # stored (with the rotated refresh token) before it was returned
    assert oauth_server.refresh_grants == 1


def test_refused_refresh_marks_the_connection_expired(oauth_server, tmp_path):
    oauth_server.configure(access_token_ttl=120)
    tokens = pkce_tokens(oauth_server)
    refresh(oauth_server, tokens)  # spends the refresh token elsewhere
    store = FileStore(tmp_path, tokens)
    with pytest.raises(RefreshRefusedError):
        refresh_via_store(oauth_server, store)
    assert store.expired
    assert store.load() == tokens  # nothing overwritten


def test_transient_refresh_failure_leaves_the_record_alone(oauth_server, tmp_path):
    oauth_server.configure(access_token_ttl=120)
    tokens = pkce_tokens(oauth_server)
    store = FileStore(tmp_path, tokens)
    oauth_server.configure(fail_token=1)
    with pytest.raises(RefreshUnavailableError):
        refresh_via_store(oauth_server, store)
    assert not store.expired
    assert store.load() == tokens


def test_eight_processes_racing_refresh_once(oauth_server, tmp_path):
    oauth_server.configure(access_token_ttl=120)  # inside the 5-minute window: every reader wants a refresh
    store = FileStore(tmp_path, pkce_tokens(oauth_server))
    oauth_server.configure(access_token_ttl=3600)
    start = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(tmp_path), oauth_server.issuer, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    start.write_text("go")
    outputs = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        outputs.append(out.strip())
    assert not [o for o in outputs if o.startswith("ERROR")], outputs
    final = store.load()
    assert set(outputs) == {hashlib.sha256(final.access_token.encode()).hexdigest()}
    assert oauth_server.refresh_grants == 1
    assert not any(key.startswith("refresh_token:") for key in oauth_server.grant_errors())
    assert oauth_server.introspect(final.access_token)["active"] is True
