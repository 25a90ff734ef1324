"""Small units of the OAuth flows that need no server: token parsing, URL checks, error mapping."""

from __future__ import annotations

import pytest

from authsome.errors import UsageError
from authsome.flows.browser import check_browser_url
from authsome.flows.endpoints import check_endpoint_url
from authsome.flows.oauth_records import base_url_key, login_command
from authsome.flows.tokens import ClientConfig, TokenSet


def test_token_set_from_a_token_response():
    tokens = TokenSet.from_response(
        {"access_token": "at-1", "token_type": "bearer", "expires_in": 60, "refresh_token": "rt-1", "scope": "a b"},
        requested_scopes=["x"],
        now=1000,
    )
    assert tokens.expires_at == 1060 and tokens.scopes == ("a", "b") and tokens.token_type == "bearer"
    assert tokens.expires_within(60, now=1000) and not tokens.expires_within(59, now=1000)


def test_refresh_answer_without_refresh_token_or_scope_keeps_the_previous_ones():
    tokens = TokenSet.from_response(
        {"access_token": "at-2"}, requested_scopes=["repo"], previous_refresh_token="rt-old", now=0
    )
    assert tokens.refresh_token == "rt-old" and tokens.scopes == ("repo",)
    assert tokens.expires_at is None and not tokens.expires_within(10**9)


@pytest.mark.parametrize("bad", [{}, {"access_token": ""}, {"access_token": "tok-canary", "expires_in": "soon"}])
def test_bad_token_responses_are_refused(bad):
    with pytest.raises(ValueError) as caught:
        TokenSet.from_response(bad)
    assert "tok-canary" not in str(caught.value)


def test_reprs_hide_every_secret():
    tokens = TokenSet("at-secret", refresh_token="rt-secret", id_token="id-secret")
    client = ClientConfig("client-id", "client-secret-value")
    for text in (repr(tokens), str(tokens), repr(client), str(client)):
        for secret in ("at-secret", "rt-secret", "id-secret", "client-secret-value"):
            assert secret not in text
    assert "client-id" in repr(client)


@pytest.mark.parametrize(
    "url",
    ["https://idp.example/auth", "http://127.0.0.1:8080/auth", "http://localhost/x", "http://[::1]:9/auth"],
)
def test_safe_urls(url):
    assert check_endpoint_url(url, what="x") == url
    assert check_browser_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://idp.example/auth",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "ftp://idp.example/",
        "https:///nohost",
        "http://127.0.0.1.evil.example/",
    ],
)
def test_unsafe_urls_are_refused(url):
    with pytest.raises(UsageError):
        check_endpoint_url(url, what="x")
    with pytest.raises(UsageError):
        check_browser_url(url)


def test_browser_url_with_whitespace_is_refused():
    with pytest.raises(UsageError):
        check_browser_url("https://idp.example/auth?x=1 --flag")


def test_base_url_key_and_login_hint():
    assert base_url_key(None) == ""
    assert base_url_key("https://gitlab.example.com/") == "https://gitlab.example.com"
    with pytest.raises(UsageError):
        base_url_key("https://user:pw@gitlab.example.com")
    assert login_command("github", "default") == "authsome login github --force"
    assert login_command("github", "work") == "authsome login github --connection work --force"
