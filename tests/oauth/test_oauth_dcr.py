"""Discovery and dynamic client registration (RFC 7591), then PKCE with the registered client."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from authsome.errors import ProviderDefinitionError, UsageError
from authsome.flows.dcr import discover, discovery_candidates, register_client
from authsome.flows.endpoints import OAuthEndpoints, resolve_endpoints
from authsome.flows.oauth_flow import run_oauth_flow
from authsome.flows.tokens import ClientConfig
from authsome.providers.parse import parse_provider
from tests.oauth_server.oauth_test_server import BrowserInThread


def provider(server, **overrides):
    data = server.provider_definition(flow="dcr_pkce", **overrides)
    return parse_provider(data, source="custom")


def test_discovery_fills_the_endpoints_from_the_issuer(oauth_server):
    found = discover(OAuthEndpoints(provider="localauth", issuer=oauth_server.issuer))
    assert found.registration_url == f"{oauth_server.issuer}/reg"
    assert found.authorization_url == f"{oauth_server.issuer}/auth"
    assert found.token_url == f"{oauth_server.issuer}/token"
    assert found.device_authorization_url == f"{oauth_server.issuer}/device/auth"
    assert found.revocation_url == f"{oauth_server.issuer}/token/revocation"


def test_discovery_urls_follow_rfc8414_and_openid():
    urls = discovery_candidates(OAuthEndpoints(provider="p", issuer="https://idp.example/tenant"))
    assert urls == [
        "https://idp.example/.well-known/oauth-authorization-server/tenant",
        "https://idp.example/tenant/.well-known/openid-configuration",
    ]


def test_register_client_registers_exactly_the_redirect_uri(oauth_server):
    endpoints = OAuthEndpoints(provider="localauth", registration_url=f"{oauth_server.issuer}/reg")
    client = register_client(endpoints, redirect_uris=["http://127.0.0.1:45678/callback"])
    assert client.client_id and client.is_public
    assert client.redirect_uris == ("http://127.0.0.1:45678/callback",)
    assert oauth_server.state()["counts"]["registrations"] == 1


def test_dcr_login_registers_once_and_reuses_the_client(oauth_server):
    browser = BrowserInThread(oauth_server)
    result = run_oauth_flow(
        provider(oauth_server),
        flow="dcr_pkce",
        connection="default",
        timeout=30,
        announce=lambda m: None,
        opener=browser,
    )
    browser.join()
    assert result.registered
    used = parse_qs(urlsplit(browser.urls[0]).query)
    assert used["client_id"] == [result.client.client_id]
    assert list(result.client.redirect_uris) == used["redirect_uri"]
    assert oauth_server.introspect(result.tokens.access_token)["client_id"] == result.client.client_id

    again = BrowserInThread(oauth_server)
    second = run_oauth_flow(
        provider(oauth_server),
        flow="dcr_pkce",
        connection="work",
        client=result.client,
        timeout=30,
        announce=lambda m: None,
        opener=again,
    )
    again.join()
    assert not second.registered and second.client == result.client
    assert oauth_server.state()["counts"]["registrations"] == 1


def test_dcr_with_only_discovery(oauth_server):
    # endpoints come from the well-known metadata of the discovery URL
    prov = provider(
        oauth_server,
        flows=[],
        registration_url=None,
        authorization_url=None,
        token_url=None,
        device_authorization_url=None,
        revocation_url=None,
        discovery_url=f"{oauth_server.issuer}/.well-known/openid-configuration",
    )
    browser = BrowserInThread(oauth_server)
    result = run_oauth_flow(
        prov, flow="dcr_pkce", connection="default", timeout=30, announce=lambda m: None, opener=browser
    )
    browser.join()
    assert result.registered
    assert oauth_server.introspect(result.tokens.access_token)["active"] is True


def test_no_registration_endpoint_is_a_clear_error():
    with pytest.raises(ProviderDefinitionError) as caught:
        register_client(OAuthEndpoints(provider="acme"), redirect_uris=["http://127.0.0.1:1/callback"])
    assert "acme" in caught.value.message


def test_pkce_without_client_id_names_the_flag(oauth_server):
    with pytest.raises(UsageError) as caught:
        run_oauth_flow(provider(oauth_server), flow="pkce", connection="default", announce=lambda m: None)
    assert "--client-id" in caught.value.hint and "LOCALAUTH_CLIENT_ID" in caught.value.hint


def test_endpoints_refuse_plain_http_to_other_hosts(oauth_server):
    data = oauth_server.provider_definition()
    prov = parse_provider(data, source="custom")
    prov.oauth["token_url"] = "http://auth.example/token"
    with pytest.raises(UsageError):
        resolve_endpoints(prov)


def test_base_url_templating(oauth_server):
    data = oauth_server.provider_definition(
        authorization_url="{base_url}/auth", token_url="{base_url}/token", base_url_default="https://gitlab.com"
    )
    prov = parse_provider(data, source="custom")
    assert resolve_endpoints(prov).token_url == "https://gitlab.com/token"
    assert resolve_endpoints(prov, oauth_server.issuer + "/").token_url == f"{oauth_server.issuer}/token"


def test_provider_authorization_params_are_sent_but_never_override_the_protocol(oauth_server):
    prov = provider(oauth_server, authorization_params={"prompt": "consent", "state": "attacker-chosen"})
    browser = BrowserInThread(oauth_server)
    run_oauth_flow(
        prov,
        flow="pkce",
        connection="default",
        client=ClientConfig("authsome-public"),
        timeout=30,
        announce=lambda m: None,
        opener=browser,
    )
    browser.join()
    query = parse_qs(urlsplit(browser.urls[0]).query)
    assert query["prompt"] == ["consent"]
    assert query["state"] != ["attacker-chosen"] and len(query["state"]) == 1
