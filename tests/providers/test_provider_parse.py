"""parse_provider: validation, schema 1 compatibility, regex hosts, injection, export."""

from __future__ import annotations

import base64
import copy

import pytest

from authsome.errors import InvalidCredentialError, NotLoggedInError, ProviderDefinitionError
from authsome.providers import parse_provider
from tests.provider_defs import api_key_provider, schema1_api_key_provider

ACME = api_key_provider()
SCHEMA1 = schema1_api_key_provider()


def with_changes(base: dict, **changes) -> dict:
    data = copy.deepcopy(base)
    for key, value in changes.items():
        if value is ...:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def refused(data: dict, field: str, path: str | None = None) -> ProviderDefinitionError:
    with pytest.raises(ProviderDefinitionError) as info:
        parse_provider(data, source="custom", path=path)
    assert f"field '{field}'" in info.value.message, info.value.message
    assert info.value.exit_code == 2
    return info.value


# ---------------------------------------------------------------- schema 1
def test_schema1_example_from_the_design_loads_unchanged():
    provider = parse_provider(copy.deepcopy(SCHEMA1), source="custom")
    assert provider.hosts == ["api.acme.example"]
    assert provider.schema_version == 1
    assert provider.export_env() == {"api_key": "ACME_API_KEY"}
    assert provider.raw == SCHEMA1
    assert provider.injection({"api_key": "k-123"}).headers == [("Authorization", "Bearer k-123")]


@pytest.mark.parametrize(
    "host_url,expected",
    [
        ("api.acme.example", "api.acme.example"),
        ("API.Acme.Example.", "api.acme.example"),
        ("https://api.acme.example", "api.acme.example"),
        ("https://api.acme.example/v1/", "api.acme.example"),
        ("https://api.acme.example:8443/v1", "api.acme.example"),
        ("regex:api\\.acme\\.example", "api.acme.example"),
        ("regex:^api\\.acme\\.example$", "api.acme.example"),
        ("regex:[a-z0-9-]+\\.acme\\.example", "*.acme.example"),
        ("regex:^[a-zA-Z0-9-]+\\.acme\\.example$", "*.acme.example"),
        ("regex:[a-z0-9.-]+\\.acme\\.example", "*.acme.example"),
        ("regex:[^.]+\\.acme\\.example", "*.acme.example"),
        ("regex:.+\\.acme\\.example", "*.acme.example"),
        ("regex:.*\\.acme\\.example", "*.acme.example"),
        ("regex:[\\w-]+\\.acme\\.example", "*.acme.example"),
    ],
)
def test_schema1_host_url_forms_are_converted(host_url, expected):
    provider = parse_provider(with_changes(SCHEMA1, host_url=host_url), source="custom")
    assert provider.hosts == [expected]


@pytest.mark.parametrize(
    "host_url",
    [
        "regex:.*googleapis.*",
        "regex:api.acme.example",  # unescaped dots match any character
        "regex:.*",
        "regex:[a-z0-9-]+",  # a wildcard over everything
        "regex:(.*\\.)?acme\\.example",
        "regex:api\\.acme\\.(com|net)",
        "regex:api\\.acme\\.example.*",
        "regex:[a-z]+\\.example",
        "regex:api\\.acme\\.exampl[e]",
        "regex:api\\.acme\\.example\\$",
        "regex:[a-z0-9-]+acme\\.example",
        "regex:",
        "https://user@api.acme.example",
        "ftp:/x",
        "api.acme.example:443",
        "api acme",
        "*.com",
        "",
    ],
)
def test_schema1_host_url_refused_names_host_url(host_url):
    refused(with_changes(SCHEMA1, host_url=host_url), "host_url")


def test_schema1_oauth_file_from_an_earlier_release_loads():
    data = {
        "schema_version": 1,
        "name": "x",
        "display_name": "X (Twitter)",
        "auth_type": "oauth2",
        "flow": "pkce",
        "oauth": {
            "authorization_url": "https://twitter.com/i/oauth2/authorize",
            "token_url": "https://api.twitter.com/2/oauth2/token",
            "revocation_url": "https://api.twitter.com/2/oauth2/revoke",
            "device_authorization_url": None,
            "scopes": ["tweet.read", "offline.access"],
            "pkce": True,
            "supports_device_flow": False,
            "supports_dcr": False,
        },
        "client": {"client_id": "env:X_CLIENT_ID", "client_secret": None},
        "export": {"env": {"access_token": "X_ACCESS_TOKEN", "refresh_token": "X_REFRESH_TOKEN"}},
    }
    provider = parse_provider(copy.deepcopy(data), source="custom")
    assert provider.hosts == []  # no host_url: never injected, still usable for get/export
    assert provider.flows == ["pkce"]
    assert provider.oauth["client_id_env"] == "X_CLIENT_ID"
    # export never hands out refresh tokens, even when an old file asks for it
    assert provider.export_env() == {"access_token": "X_ACCESS_TOKEN"}
    assert provider.raw == data


def test_schema1_literal_client_secret_is_never_used_or_shown():
    data = {
        "schema_version": 1,
        "name": "old",
        "display_name": "Old",
        "auth_type": "oauth2",
        "flow": "pkce",
        "oauth": {
            "authorization_url": "https://auth.old.example/authorize",
            "token_url": "https://auth.old.example/token",
            "client_secret": "literal-old-secret",
        },
        "client": {"client_id": "public-id", "client_secret": "another-literal-secret"},
    }
    provider = parse_provider(copy.deepcopy(data), source="custom")
    assert provider.raw == data
    assert "client_secret" not in provider.oauth
    assert provider.oauth["client_id"] == "public-id"
    assert "literal" not in repr(provider.to_dict())


def test_schema1_supports_device_flow_becomes_a_flow():
    data = {
        "schema_version": 1,
        "name": "google",
        "display_name": "Google",
        "auth_type": "oauth2",
        "flow": "pkce",
        "oauth": {
            "authorization_url": "https://accounts.google.com/o/oauth2/v2/auth",
            "token_url": "https://oauth2.googleapis.com/token",
            "device_authorization_url": "https://oauth2.googleapis.com/device/code",
            "supports_device_flow": True,
        },
    }
    assert parse_provider(data, source="custom").flows == ["pkce", "device_code"]


# ---------------------------------------------------------------- validation errors
def test_error_names_the_file_and_the_field():
    data = with_changes(ACME, hosts=["api.acme.example", "api.*.example"])
    err = refused(data, "hosts[1]", path="./x.json")
    assert err.message == (
        "Invalid provider definition in ./x.json: field 'hosts[1]': "
        "'api.*.example' is not a host or a whole-label wildcard."
    )


@pytest.mark.parametrize(
    "changes,field",
    [
        ({"name": "../etc"}, "name"),
        ({"name": "a..b"}, "name"),
        ({"name": "Acme"}, "name"),
        ({"name": "-acme"}, "name"),
        ({"name": "a/b"}, "name"),
        ({"name": "a" * 65}, "name"),
        ({"name": ...}, "name"),
        ({"display_name": ""}, "display_name"),
        ({"display_name": "Acme\nInc"}, "display_name"),
        ({"auth_type": "password"}, "auth_type"),
        ({"flow": "implicit"}, "flow"),
        ({"flow": "pkce"}, "flow"),
        ({"flows": "api_key"}, "flows"),
        ({"flows": ["magic"]}, "flows[0]"),
        ({"schema_version": 3}, "schema_version"),
        ({"schema_version": True}, "schema_version"),
        ({"docs_url": "http://acme.example/docs"}, "docs_url"),
        ({"docs_url": "javascript:alert(1)"}, "docs_url"),
        ({"hosts": []}, "hosts"),
        ({"hosts": "api.acme.example"}, "hosts"),
        ({"hosts": ["*.com"]}, "hosts[0]"),
        ({"hosts": ["api.acme.example:443"]}, "hosts[0]"),
        ({"hosts": [42]}, "hosts[0]"),
        ({"api_key": ...}, "api_key"),
        ({"api_key": {"env_var": "ACME_API_KEY"}}, "api_key"),
        ({"api_key": {"header_name": "X-Key", "query_param": "key"}}, "api_key"),
        ({"api_key": {"header_name": "Bad Header"}}, "api_key.header_name"),
        ({"api_key": {"header_name": "Host"}}, "api_key.header_name"),
        ({"api_key": {"header_name": "Content-Length"}}, "api_key.header_name"),
        ({"api_key": {"header_name": "X-Key", "header_prefix": "Bearer\r\n"}}, "api_key.header_prefix"),
        ({"api_key": {"query_param": "a&b"}}, "api_key.query_param"),
        ({"api_key": {"header_name": "X-Key", "env_var": "acme_key"}}, "api_key.env_var"),
        ({"api_key": {"header_name": "X-Key", "env_var": "1KEY"}}, "api_key.env_var"),
        ({"api_key": {"header_name": "X-Key", "key_pattern": "ak-.+"}}, "api_key.key_pattern_hint"),
        ({"api_key": {"header_name": "X-Key", "key_pattern": "(ak", "key_pattern_hint": "h"}}, "api_key.key_pattern"),
        ({"api_key": {"header_name": "X-Key", "key_pattern": "(a+)+", "key_pattern_hint": "h"}}, "api_key.key_pattern"),
        (
            {"api_key": {"header_name": "X-Key", "key_pattern": "(a|b*)*c", "key_pattern_hint": "h"}},
            "api_key.key_pattern",
        ),
        (
            {"api_key": {"header_name": "X-Key", "key_pattern": "((ab)+c)*", "key_pattern_hint": "h"}},
            "api_key.key_pattern",
        ),
        (
            {"api_key": {"header_name": "X-Key", "key_pattern": "(a)\\1", "key_pattern_hint": "h"}},
            "api_key.key_pattern",
        ),
        (
            {"api_key": {"header_name": "X-Key", "key_pattern": "a" * 400, "key_pattern_hint": "h"}},
            "api_key.key_pattern",
        ),
        ({"api_key": {"header_name": "X-Key", "value_field": "other"}}, "api_key.value_field"),
        ({"api_key": {"basic_username": "{nope}", "basic_password": ""}}, "api_key.basic_username"),
        ({"api_key": {"basic_username": "api", "basic_password": ""}}, "api_key.basic_password"),
        ({"api_key": {"basic_username": "{api_key", "basic_password": ""}}, "api_key.basic_username"),
        ({"api_key": {"header_name": "X-Key", "extra_headers": {"X-Key": "{api_key}"}}}, "api_key.extra_headers.X-Key"),
        (
            {"api_key": {"header_name": "X-Key", "extra_headers": {"X-Other": "{secret}"}}},
            "api_key.extra_headers.X-Other",
        ),
        ({"api_key": {"header_name": "X-Key", "extra_headers": ["X-Other"]}}, "api_key.extra_headers"),
        ({"oauth": {"token_url": "https://a.example/t"}}, "flows"),
        ({"export": {"env": {"api_key": "lower"}}}, "export.env.api_key"),
        ({"export": {"vars": {}}}, "export"),
    ],
)
def test_invalid_definitions_name_the_field(changes, field):
    refused(with_changes(ACME, **changes), field)


FIELDS_BASE = with_changes(
    ACME,
    api_key={"basic_username": "{account_sid}", "basic_password": "{auth_token}"},
    fields=[
        {"name": "account_sid", "secret": False, "env_var": "ACME_SID"},
        {"name": "auth_token", "secret": True, "env_var": "ACME_TOKEN"},
    ],
)


@pytest.mark.parametrize(
    "fields,field",
    [
        ([], "fields"),
        ("api_key", "fields"),
        ([{"name": "Auth"}], "fields[0].name"),
        ([{"name": "status"}], "fields[0].name"),
        ([{"name": "access_token"}], "fields[0].name"),
        ([{"name": "a"}, {"name": "a"}], "fields[1].name"),
        ([{"name": "a", "secret": "yes"}], "fields[0].secret"),
        ([{"name": "a", "env_var": "a-b"}], "fields[0].env_var"),
        ([{"name": "a", "pattern": "x+"}], "fields[0].hint"),
        ([{"name": "a", "pattern": "(x+)*", "hint": "h"}], "fields[0].pattern"),
        ([{"name": "a", "secret": False}], "fields"),
        (["a"], "fields[0]"),
    ],
)
def test_invalid_fields_name_the_field(fields, field):
    data = with_changes(FIELDS_BASE, fields=fields)
    data["api_key"] = {"header_name": "X-Key", "value_field": "a"}
    refused(data, field)


def test_fields_with_top_level_key_pattern_is_refused():
    data = copy.deepcopy(FIELDS_BASE)
    data["api_key"]["key_pattern"] = "x+"
    data["api_key"]["key_pattern_hint"] = "h"
    refused(data, "api_key.key_pattern")


OAUTH = {
    "name": "acme-oauth",
    "display_name": "Acme",
    "auth_type": "oauth2",
    "flow": "pkce",
    "hosts": ["api.acme.example"],
    "oauth": {
        "authorization_url": "https://auth.acme.example/authorize",
        "token_url": "https://auth.acme.example/token",
        "env_var": "ACME_TOKEN",
    },
}


@pytest.mark.parametrize(
    "oauth_changes,field",
    [
        ({"authorization_url": "http://auth.acme.example/authorize"}, "oauth.authorization_url"),
        ({"authorization_url": None}, "oauth.authorization_url"),
        ({"token_url": "https://user:pw@auth.acme.example/token"}, "oauth.token_url"),
        ({"token_url": "{base_url}/token"}, "oauth.token_url"),  # no base_url_default
        ({"token_url": "https://{tenant}.acme.example/token"}, "oauth.token_url"),
        ({"revocation_url": "file:///etc/passwd"}, "oauth.revocation_url"),
        ({"client_secret": "s3cr3t"}, "oauth.client_secret"),
        ({"scopes": "read write"}, "oauth.scopes"),
        ({"scopes": ["read write"]}, "oauth.scopes"),
        ({"pkce": "yes"}, "oauth.pkce"),
        ({"env_var": "acme"}, "oauth.env_var"),
        ({"client_id_env": "A-B"}, "oauth.client_id_env"),
        ({"header_name": "A B"}, "oauth.header_name"),
        ({"authorization_params": {"a": 1}}, "oauth.authorization_params"),
    ],
)
def test_invalid_oauth_sections_name_the_field(oauth_changes, field):
    data = copy.deepcopy(OAUTH)
    data["oauth"].update(oauth_changes)
    refused(data, field)


def test_device_flow_needs_device_endpoint():
    refused(with_changes(OAUTH, flows=["device_code"]), "oauth.device_authorization_url")
    refused(with_changes(OAUTH, flows=["dcr_pkce"]), "oauth.registration_url")
    refused(with_changes(OAUTH, flows=["api_key"]), "api_key")


def test_http_oauth_urls_are_allowed_for_loopback_only():
    data = copy.deepcopy(OAUTH)
    data["oauth"]["authorization_url"] = "http://127.0.0.1:8080/authorize"
    data["oauth"]["token_url"] = "http://localhost:8080/token"
    data["oauth"]["revocation_url"] = "http://[::1]:8080/revoke"
    parse_provider(data, source="custom")


def test_unknown_fields_are_preserved_and_ignored():
    data = with_changes(ACME, x_team_note="hello", future_thing={"a": 1})
    provider = parse_provider(data, source="custom")
    assert provider.raw["future_thing"] == {"a": 1}
    assert "x_team_note" not in provider.to_dict()


def test_not_an_object():
    with pytest.raises(ProviderDefinitionError):
        parse_provider(["acme"], source="custom", path="p.json")  # type: ignore[arg-type]


# ---------------------------------------------------------------- credential validation
def test_credential_validation_message_and_hint():
    data = copy.deepcopy(ACME)
    data["api_key"]["key_pattern"] = "ak-[a-z0-9]{8,}"
    data["api_key"]["key_pattern_hint"] = "Acme keys start with 'ak-'."
    provider = parse_provider(data, source="custom")
    provider.validate_credential({"api_key": "ak-12345678"})
    for bad in ["", "ak-1", "xx-12345678", "ak-12345678\n", " ak-12345678", "ak-1234\x1b5678", "ak-1234\u20285678"]:
        with pytest.raises(InvalidCredentialError) as info:
            provider.validate_credential({"api_key": bad})
        assert info.value.message == "This does not look like a valid Acme API key."
        assert info.value.hint == "Acme keys start with 'ak-'."
    with pytest.raises(InvalidCredentialError):
        provider.validate_credential({})


def test_field_without_pattern_still_refuses_empty_and_control_characters():
    provider = parse_provider(copy.deepcopy(ACME), source="custom")
    provider.validate_credential({"api_key": "anything-goes"})
    for bad in ["", "a\nb", "a\rb", "a\tb", "a\x7fb", "a\x85b"]:
        with pytest.raises(InvalidCredentialError):
            provider.validate_credential({"api_key": bad})


def test_basic_username_field_refuses_colon():
    provider = parse_provider(copy.deepcopy(FIELDS_BASE), source="custom")
    with pytest.raises(InvalidCredentialError) as info:
        provider.validate_credential({"account_sid": "AC1:2", "auth_token": "t"})
    assert info.value.message == "This does not look like a valid Acme account sid."
    provider.validate_credential({"account_sid": "AC12", "auth_token": "t:with:colons"})


# ---------------------------------------------------------------- injection
def test_header_injection_and_replacement_list():
    provider = parse_provider(copy.deepcopy(ACME), source="custom")
    inj = provider.injection({"api_key": "k-123"})
    assert inj.headers == [("Authorization", "Bearer k-123")]
    assert inj.query == []
    assert inj.replaces == ["authorization"]
    assert inj.secret_values == ["k-123"]
    assert "k-123" not in repr(inj)


def test_empty_prefix_and_equals_prefix():
    data = with_changes(ACME, api_key={"header_name": "x-api-key", "header_prefix": ""})
    assert parse_provider(data, source="custom").injection({"api_key": "k"}).headers == [("x-api-key", "k")]
    data = with_changes(ACME, api_key={"header_name": "Authorization", "header_prefix": "Token token="})
    inj = parse_provider(data, source="custom").injection({"api_key": "k"})
    assert inj.headers == [("Authorization", "Token token=k")]


def test_query_injection():
    data = with_changes(ACME, api_key={"query_param": "api_key"})
    inj = parse_provider(data, source="custom").injection({"api_key": "k&x=1"})
    assert inj.query == [("api_key", "k&x=1")]  # raw: the proxy encodes it
    assert inj.headers == [] and inj.secret_values == ["k&x=1"]


def test_basic_injection_with_fields():
    provider = parse_provider(copy.deepcopy(FIELDS_BASE), source="custom")
    inj = provider.injection({"account_sid": "AC1", "auth_token": "tok"})
    expected = base64.b64encode(b"AC1:tok").decode()
    assert inj.headers == [("Authorization", "Basic " + expected)]
    assert inj.replaces == ["authorization"]
    assert "tok" in inj.secret_values and "AC1" not in inj.secret_values
    assert expected in inj.secret_values
    assert provider.export_env() == {"account_sid": "ACME_SID", "auth_token": "ACME_TOKEN"}


def test_extra_headers_injection():
    data = with_changes(
        ACME,
        api_key={"header_name": "DD-API-KEY", "extra_headers": {"DD-APPLICATION-KEY": "{app_key}"}},
        fields=[{"name": "api_key"}, {"name": "app_key"}],
    )
    inj = parse_provider(data, source="custom").injection({"api_key": "a", "app_key": "b"})
    assert inj.headers == [("DD-API-KEY", "a"), ("DD-APPLICATION-KEY", "b")]
    assert inj.replaces == ["dd-api-key", "dd-application-key"]
    assert sorted(inj.secret_values) == ["a", "b"]


def test_injection_refuses_missing_or_control_values():
    provider = parse_provider(copy.deepcopy(ACME), source="custom")
    with pytest.raises(NotLoggedInError):
        provider.injection({})
    with pytest.raises(InvalidCredentialError) as info:
        provider.injection({"api_key": "k\r\nX-Evil: 1"})
    assert "X-Evil" not in info.value.message


def test_oauth_injection_defaults_to_bearer_and_honours_overrides():
    provider = parse_provider(copy.deepcopy(OAUTH), source="custom")
    inj = provider.injection({"access_token": "at", "refresh_token": "rt"})
    assert inj.headers == [("Authorization", "Bearer at")]
    assert inj.secret_values == ["at"]
    assert provider.export_env() == {"access_token": "ACME_TOKEN"}
    data = copy.deepcopy(OAUTH)
    data["oauth"].update(header_name="X-Token", header_prefix="")
    inj = parse_provider(data, source="custom").injection({"access_token": "at"}, flow="pkce")
    assert inj.headers == [("X-Token", "at")] and inj.replaces == ["x-token"]


def test_provider_with_both_flows_injects_by_connection_flow():
    data = with_changes(
        OAUTH,
        flows=["api_key"],
        api_key={"header_name": "Authorization", "header_prefix": "token", "env_var": "ACME_PAT"},
    )
    provider = parse_provider(data, source="custom")
    assert provider.injection({"api_key": "pat"}).headers == [("Authorization", "token pat")]
    assert provider.injection({"access_token": "at"}).headers == [("Authorization", "Bearer at")]
    assert provider.injection({"api_key": "pat", "access_token": "at"}, flow="api_key").headers == [
        ("Authorization", "token pat")
    ]
    assert provider.export_env() == {"api_key": "ACME_PAT", "access_token": "ACME_TOKEN"}


def test_injection_refuses_a_connection_the_definition_cannot_send():
    oauth_only = parse_provider(copy.deepcopy(OAUTH), source="custom")
    with pytest.raises(NotLoggedInError):
        oauth_only.injection({"api_key": "k"}, flow="api_key")
    with pytest.raises(NotLoggedInError):
        oauth_only.injection({"api_key": "k"})  # no access token stored
    key_only = parse_provider(copy.deepcopy(ACME), source="custom")
    with pytest.raises(NotLoggedInError):
        key_only.injection({"access_token": "at"}, flow="pkce")


# ---------------------------------------------------------------- {base_host}
def test_base_host_templating():
    data = {
        "name": "forge",
        "display_name": "Forge",
        "auth_type": "oauth2",
        "flow": "pkce",
        "hosts": ["api.forge.example", "{base_host}"],
        "oauth": {
            "authorization_url": "{base_url}/oauth/authorize",
            "token_url": "{base_url}/oauth/token",
            "base_url_default": "https://forge.example",
            "env_var": "FORGE_TOKEN",
        },
    }
    provider = parse_provider(data, source="custom")
    assert provider.resolved_hosts() == ["api.forge.example", "forge.example"]
    assert provider.resolved_hosts("https://forge.example/") == ["api.forge.example", "forge.example"]
    # A self-hosted instance: the public hosts no longer apply.
    assert provider.resolved_hosts("https://git.corp.example") == ["git.corp.example"]
    assert provider.matches_host("git.corp.example", base_url="https://git.corp.example")
    assert not provider.matches_host("api.forge.example", base_url="https://git.corp.example")
    assert not provider.matches_host("git.corp.example")
    assert provider.resolved_hosts("not a url") == []


def test_base_host_in_hosts_must_be_exact_placeholder():
    data = copy.deepcopy(OAUTH)
    data["hosts"] = ["api.{base_host}"]
    refused(data, "hosts[0]")


def test_to_dict_is_json_and_has_no_surprises():
    import json

    provider = parse_provider(copy.deepcopy(ACME), source="custom", path="/tmp/acme.json")
    view = provider.to_dict()
    json.dumps(view)
    assert view["name"] == "acme" and view["source"] == "custom" and view["path"] == "/tmp/acme.json"
    assert view["fields"][0]["name"] == "api_key" and view["export_env"] == {"api_key": "ACME_API_KEY"}


@pytest.mark.parametrize(
    "pattern,nested",
    [
        ("(a+)+", True),
        ("(a*)*", True),
        ("(?:a+){2,}", True),
        ("(a{2,5})+", True),
        ("((a+)b)+", True),
        ("(x|y+)*z", True),
        ("(a|b)+", False),
        ("(ab+)?", False),
        ("[a+]+", False),
        ("\\(a+\\)+", False),
        ("(a+){1}", False),
        ("((a+))", False),
        ("sk-[A-Za-z0-9_-]{20,}", False),
        ("(sk|rk)_(live|test)_[A-Za-z0-9]{10,}", False),
        ("(?P<p>[a-z]+)-x", False),
    ],
)
def test_nested_quantifier_detection(pattern, nested):
    from authsome.providers.regex_check import has_nested_quantifier

    assert has_nested_quantifier(pattern) is nested
