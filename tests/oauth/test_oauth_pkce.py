"""PKCE login (RFC 7636) against the real authorization server."""

from __future__ import annotations

import re
import threading
from urllib.parse import parse_qs, urlsplit

import pytest

from authsome.errors import CancelledError, InputTimeoutError, InvalidCredentialError
from authsome.flows.callback import LoopbackCallback
from authsome.flows.pkce import login_pkce
from authsome.flows.tokens import ClientConfig
from tests.oauth_server.oauth_test_server import BrowserInThread, endpoints_for


def run_login(server, browser, client_id="authsome-public", secret=None, **kwargs):
    messages: list[str] = []
    tokens = login_pkce(
        endpoints_for(server),
        ClientConfig(client_id, secret),
        ["openid", "read"],
        label="localauth (default)",
        timeout=kwargs.pop("timeout", 30),
        announce=messages.append,
        any_loopback_port=kwargs.pop("any_loopback_port", True),
        opener=browser,
        **kwargs,
    )
    return tokens, messages


def test_pkce_login_returns_tokens_the_server_reports_active(oauth_server, browser):
    tokens, messages = run_login(oauth_server, browser)
    browser.join()

    info = oauth_server.introspect(tokens.access_token)
    assert info["active"] is True
    assert info["client_id"] == "authsome-public"
    assert info["sub"] == "alice"
    assert tokens.refresh_token
    assert set(tokens.scopes) == {"openid", "read"}
    assert tokens.expires_at is not None
    # the URL was shown to the user, and it asked for S256 PKCE
    assert browser.urls[0] in messages[0]
    query = parse_qs(urlsplit(browser.urls[0]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert query["redirect_uri"][0].startswith("http://127.0.0.1:")
    # the browser got the success page
    assert browser.responses[0].status_code == 200
    assert "Signed in" in browser.responses[0].text
    assert oauth_server.state()["counts"]["grants"] == {"authorization_code": 1}


def test_token_repr_never_shows_tokens(oauth_server, browser):
    tokens, _ = run_login(oauth_server, browser)
    browser.join()
    for text in (repr(tokens), str(tokens)):
        assert tokens.access_token not in text
        assert tokens.refresh_token not in text
    assert "expires_at" in repr(tokens)


def test_confidential_client_authenticates_at_the_token_endpoint(oauth_server, browser):
    tokens, _ = run_login(
        oauth_server, browser, client_id="authsome-confidential", secret="confidential-test-secret-0123456789"
    )
    browser.join()
    assert oauth_server.introspect(tokens.access_token)["client_id"] == "authsome-confidential"


def test_wrong_client_secret_is_an_invalid_credential(oauth_server, browser):
    with pytest.raises(InvalidCredentialError) as caught:
        run_login(oauth_server, browser, client_id="authsome-confidential", secret="not-the-secret")
    browser.join()
    assert "not-the-secret" not in str(caught.value)
    assert "invalid_client" in str(caught.value)


def test_fixed_port_7999_redirect(oauth_server, browser):
    tokens, _ = run_login(oauth_server, browser, client_id="authsome-fixed-port", any_loopback_port=False)
    browser.join()
    assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A7999%2Fcallback" in browser.urls[0]
    assert oauth_server.introspect(tokens.access_token)["active"] is True


def test_denied_consent_is_cancelled(oauth_server, browser):
    oauth_server.configure(interaction="deny")
    with pytest.raises(CancelledError) as caught:
        run_login(oauth_server, browser)
    browser.join()
    assert caught.value.exit_code == 8
    assert "denied" in caught.value.message
    assert oauth_server.state()["counts"]["grants"] == {}


def test_wrong_state_stops_the_login_and_no_code_is_exchanged(oauth_server):
    def tamper(url: str) -> str:
        return re.sub(r"state=[^&]+", "state=forged-state", url)

    browser = BrowserInThread(oauth_server, tamper=tamper)
    with pytest.raises(CancelledError) as caught:
        run_login(oauth_server, browser)
    browser.join()
    assert "state" in caught.value.message
    assert browser.responses[0].status_code == 400
    assert oauth_server.state()["counts"]["grants"] == {}


def test_replayed_callback_is_refused(oauth_server):
    captured: list[str] = []

    def keep(url: str) -> str:
        captured.append(url)
        return url

    first = BrowserInThread(oauth_server, tamper=keep)
    run_login(oauth_server, first)
    first.join()
    import httpx

    # the first listener is closed: its redirect cannot be delivered twice
    with pytest.raises(httpx.ConnectError):
        oauth_server.deliver(captured[0])

    # a second login receives the first login's code and state: refused, nothing exchanged
    def replay(url: str) -> str:
        return url.split("?")[0] + "?" + captured[0].split("?", 1)[1]

    second = BrowserInThread(oauth_server, tamper=replay)
    with pytest.raises(CancelledError):
        run_login(oauth_server, second)
    second.join()
    assert oauth_server.state()["counts"]["grants"] == {"authorization_code": 1}


def test_listener_times_out(oauth_server):
    with pytest.raises(InputTimeoutError) as caught:
        run_login(oauth_server, lambda url: None, timeout=1)
    assert caught.value.exit_code == 8


def test_listener_ignores_other_paths_and_hosts_then_takes_one_callback():
    import httpx

    listener = LoopbackCallback(0)
    results = []
    thread = threading.Thread(target=lambda: results.append(listener.wait("s1", 20)), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{listener.port}"
    with httpx.Client(trust_env=False, timeout=10) as client:
        assert client.get(base + "/favicon.ico").status_code == 404
        wrong_host = client.get(base + "/callback?code=c&state=s1", headers={"Host": "evil.example"})
        assert wrong_host.status_code == 400
        page = client.get(base + "/callback?code=c%3Cb%3E&state=s1&error=%3Cscript%3Ex")
        assert page.status_code == 400
        assert "<script>" not in page.text and "&lt;script&gt;" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in page.headers["content-security-policy"]
    thread.join(10)
    assert results and results[0].error == "<script>x"
    with httpx.Client(trust_env=False, timeout=5) as client, pytest.raises(httpx.ConnectError):
        client.get(base + "/callback?code=c&state=s1")
