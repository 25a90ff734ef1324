"""Revocation (RFC 7009) against the real server, checked by introspection."""

from __future__ import annotations

import socket

import pytest

from authsome.flows.refresh import RefreshRefusedError, refresh_tokens
from authsome.flows.revoke import RevocationFailedError, revoke_tokens
from authsome.flows.tokens import ClientConfig
from tests.oauth_server.oauth_test_server import endpoints_for, pkce_tokens

CLIENT = ClientConfig("authsome-public")


def test_revoke_makes_both_tokens_inactive(oauth_server):
    tokens = pkce_tokens(oauth_server)
    assert oauth_server.introspect(tokens.refresh_token)["active"] is True
    revoked = revoke_tokens(endpoints_for(oauth_server), CLIENT, tokens, label="localauth (default)")
    assert revoked == ["refresh_token", "access_token"]
    assert oauth_server.introspect(tokens.access_token) == {"active": False}
    assert oauth_server.introspect(tokens.refresh_token) == {"active": False}
    assert oauth_server.state()["counts"]["revocations"] == 2
    with pytest.raises(RefreshRefusedError):
        refresh_tokens(endpoints_for(oauth_server), CLIENT, tokens, label="x", login_command="authsome login x")


def test_confidential_client_revokes_with_its_secret(oauth_server):
    client = ClientConfig("authsome-confidential", "confidential-test-secret-0123456789")
    tokens = pkce_tokens(oauth_server, client.client_id, client.client_secret)
    revoke_tokens(endpoints_for(oauth_server), client, tokens, label="localauth (default)")
    assert oauth_server.introspect(tokens.access_token) == {"active": False}


def test_without_a_revocation_endpoint_nothing_is_sent(oauth_server):
    tokens = pkce_tokens(oauth_server)
    endpoints = endpoints_for(oauth_server, revocation_url=None)
    assert revoke_tokens(endpoints, CLIENT, tokens, label="localauth (default)") == []
    assert oauth_server.introspect(tokens.access_token)["active"] is True
    assert oauth_server.state()["counts"]["revocations"] == 0


def test_unreachable_revocation_endpoint_fails_without_leaking(oauth_server):
    tokens = pkce_tokens(oauth_server)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoints = endpoints_for(oauth_server, revocation_url=f"http://127.0.0.1:{port}/revoke")
    with pytest.raises(RevocationFailedError) as caught:
        revoke_tokens(endpoints, CLIENT, tokens, label="localauth (default)")
    text = caught.value.message + caught.value.hint
    assert "refresh token" in text and "nothing was deleted" in text
    assert tokens.refresh_token not in text and tokens.access_token not in text
    assert oauth_server.introspect(tokens.access_token)["active"] is True


def test_refused_revocation_is_an_error(oauth_server):
    tokens = pkce_tokens(oauth_server)
    # a client that does not exist cannot revoke: the server answers 401 invalid_client
    with pytest.raises(RevocationFailedError):
        revoke_tokens(endpoints_for(oauth_server), ClientConfig("no-such-client"), tokens, label="x (default)")
    assert oauth_server.introspect(tokens.access_token)["active"] is True
