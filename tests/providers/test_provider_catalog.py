"""The bundled catalog: every file parses, patterns accept and refuse the right keys, hosts resist lookalikes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from authsome.errors import InvalidCredentialError
from authsome.providers import ProviderRegistry, host_matches, normalize_host
from authsome.providers.registry import BUNDLED_DIR

SAMPLES = json.loads((Path(__file__).parents[1] / "fixtures" / "sample_keys.json").read_text())
BUNDLED_FILES = sorted(Path(BUNDLED_DIR).glob("*.json"))
REGISTRY = ProviderRegistry(None)
PROVIDERS = REGISTRY.all()
BY_NAME = {p.name: p for p in PROVIDERS}

REQUIRED = (
    "openai anthropic gemini mistral groq together fireworks openrouter perplexity cohere deepseek xai "
    "huggingface replicate elevenlabs tavily exa serpapi brave-search firecrawl stripe resend sendgrid "
    "postmark mailgun twilio github gitlab slack notion linear google microsoft atlassian discord hubspot "
    "airtable cloudflare vercel supabase sentry datadog pinecone"
).split()
OAUTH_REQUIRED = (
    "github gitlab google microsoft slack notion linear atlassian discord hubspot dropbox zoom spotify "
    "salesforce box figma asana"
).split()


def test_catalog_is_large_and_complete():
    assert len(BUNDLED_FILES) >= 60
    assert len(PROVIDERS) == len(BUNDLED_FILES)
    missing = [name for name in REQUIRED + OAUTH_REQUIRED if name not in BY_NAME]
    assert missing == []


@pytest.mark.parametrize("path", BUNDLED_FILES, ids=lambda p: p.stem)
def test_bundled_file_is_valid_and_named_after_itself(path):
    provider = REGISTRY.get(path.stem)
    assert provider.name == path.stem
    assert provider.source == "bundled"
    assert provider.docs_url and provider.docs_url.startswith("https://")
    assert provider.hosts, "every bundled provider says where its credential may go"
    raw = json.loads(path.read_text())
    assert raw.get("schema_version") == 2


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.name)
def test_no_bundled_client_secrets_or_ids(provider):
    text = json.dumps(provider.raw)
    oauth = provider.raw.get("oauth") or {}
    assert oauth.get("client_secret") is None
    assert oauth.get("client_id") is None
    assert "client" not in provider.raw
    assert "secret" not in {k.lower() for k in provider.raw}
    # OAuth providers name env vars for the client credentials instead.
    if provider.oauth:
        assert oauth.get("env_var"), "an OAuth provider says which variable holds its access token"
    assert "{base_url}" not in text or provider.base_url_default


@pytest.mark.parametrize("name", OAUTH_REQUIRED)
def test_oauth_providers_have_endpoints(name):
    provider = BY_NAME[name]
    assert provider.auth_type == "oauth2"
    assert provider.oauth["authorization_url"] and provider.oauth["token_url"]
    for flow in provider.flows:
        if flow == "device_code":
            assert provider.oauth["device_authorization_url"]
        if flow == "api_key":
            assert provider.fields, f"{name} offers api_key but has no credential fields"


def test_multi_part_providers_use_fields():
    assert [f.name for f in BY_NAME["twilio"].fields] == ["account_sid", "auth_token"]
    assert [f.name for f in BY_NAME["datadog"].fields] == ["api_key", "app_key"]
    assert [f.name for f in BY_NAME["atlassian"].fields] == ["email", "api_token"]
    assert "fields" in BY_NAME["mailgun"].raw
    datadog_hosts = BY_NAME["datadog"].hosts
    for site in (
        "api.datadoghq.com",
        "api.us3.datadoghq.com",
        "api.us5.datadoghq.com",
        "api.datadoghq.eu",
        "api.ap1.datadoghq.com",
        "api.ddog-gov.com",
    ):
        assert any(host_matches(p, site) for p in datadog_hosts), site
    for host in ("api.mailgun.net", "api.eu.mailgun.net"):
        assert BY_NAME["mailgun"].matches_host(host)
    assert BY_NAME["atlassian"].matches_host("acme.atlassian.net")
    assert not BY_NAME["atlassian"].matches_host("atlassian.net")


def test_github_offers_oauth_and_personal_access_token():
    github = BY_NAME["github"]
    assert github.auth_type == "oauth2"
    assert "api_key" in github.flows and github.flows[0] == github.flow
    assert github.api_key["header_name"] == "Authorization"


def test_gemini_uses_goog_api_key_header():
    gemini = BY_NAME["gemini"]
    assert gemini.hosts == ["generativelanguage.googleapis.com"]
    assert gemini.injection({"api_key": "AIzaTEST"}).headers == [("x-goog-api-key", "AIzaTEST")]


def test_openai_texts_match_the_user_guide():
    openai = BY_NAME["openai"]
    with pytest.raises(InvalidCredentialError) as info:
        openai.fields[0].validate("not-a-key", openai.display_name)
    assert info.value.message == "This does not look like a valid OpenAI API key."
    assert info.value.hint == "OpenAI API keys start with 'sk-' followed by at least 20 letters, digits, '_' or '-'."
    assert info.value.exit_code == 4


def _patterned_fields():
    for provider in PROVIDERS:
        for field in provider.fields:
            if field.pattern:
                yield provider, field


PATTERNED = list(_patterned_fields())


def test_every_pattern_has_samples_and_a_hint():
    assert PATTERNED
    for provider, field in PATTERNED:
        assert field.hint, f"{provider.name}.{field.name}"
        assert field.name in SAMPLES.get(provider.name, {}), f"no samples for {provider.name}.{field.name}"


@pytest.mark.parametrize("provider,field", PATTERNED, ids=lambda x: getattr(x, "name", ""))
def test_pattern_accepts_valid_and_refuses_invalid_samples(provider, field):
    samples = SAMPLES[provider.name][field.name]
    assert samples["valid"] and samples["invalid"]
    for value in samples["valid"]:
        field.validate(value, provider.display_name)  # must not raise
    generated_bad = [""]
    for value in samples["valid"]:
        generated_bad += [" " + value, value + " ", value + "\n", value[:3] + "\n" + value[3:], value + "\x00"]
    for value in samples["invalid"] + generated_bad:
        with pytest.raises(InvalidCredentialError) as info:
            field.validate(value, provider.display_name)
        assert info.value.message == f"This does not look like a valid {provider.display_name} {field.label}."
        if value.strip():
            assert value.strip() not in info.value.message  # never echo the value


def test_patterns_are_loose_prefix_patterns_not_anchored_regexes():
    for provider, field in PATTERNED:
        assert not field.pattern.startswith("^") and not field.pattern.endswith("$"), provider.name
        re.compile(field.pattern)


# ---------------------------------------------------------------- host lookalikes
_CYRILLIC = {"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440", "c": "\u0441", "i": "\u0456"}


def _homograph(host: str) -> str:
    for i, ch in enumerate(host):
        if ch in _CYRILLIC:
            return host[:i] + _CYRILLIC[ch] + host[i + 1 :]
    return "\u0430" + host


def _lookalikes(host: str) -> list[str]:
    """Names that look like ``host`` but are not it (nor a subdomain of it)."""
    first, _, rest = host.partition(".")
    homograph = _homograph(host)
    candidates = [
        host + ".evil.test",  # suffix
        host + ".evil.test.",
        "evil-" + host,  # prefix
        "evil" + host,
        host.replace(".", "-", 1) + ".evil.test",
        host[1:],
        first + "x." + rest if rest else first + "x",
        host + "x",
        homograph,  # punycode homograph, raw and encoded
        homograph.encode("idna").decode("ascii"),
        host + ":443",  # not plain host names at all
        "user@" + host,
        host + "/",
        " " + host,
        host.replace(".", "..", 1),
    ]
    return [c for c in candidates if c != host]


def _bad_hosts(pattern: str) -> list[str]:
    if pattern.startswith("*."):
        suffix = pattern[2:]
        near = _lookalikes(suffix)
        return [suffix] + near + ["tenant1." + n for n in near]
    return _lookalikes(pattern) + ["evil." + pattern]  # an extra label is another host


def _all_bundled_patterns():
    for provider in PROVIDERS:
        for pattern in provider.resolved_hosts():
            yield provider, pattern


HOST_CASES = list(_all_bundled_patterns())


def _covered_by_own_wildcard(provider, host: str) -> bool:
    canonical = normalize_host(host)
    own = provider.resolved_hosts()
    return canonical is not None and (
        canonical in own or any(p.startswith("*.") and canonical.endswith(p[1:]) for p in own)
    )


@pytest.mark.parametrize("provider,pattern", HOST_CASES, ids=lambda x: getattr(x, "name", x))
def test_bundled_host_matches_itself_and_no_lookalike(provider, pattern):
    host = "tenant1." + pattern[2:] if pattern.startswith("*.") else pattern
    assert provider.matches_host(host)
    assert provider.matches_host(host.upper()), "case does not matter"
    assert provider.matches_host(host + "."), "a trailing dot is the same host"
    bad_hosts = _bad_hosts(pattern)
    assert len(bad_hosts) >= 15
    for bad in bad_hosts:
        assert not host_matches(pattern, bad), (pattern, bad)
        # The provider's other patterns may accept it only as a genuine subdomain
        # of one of its own wildcards, or one of its own exact hosts (sentry.io next to *.sentry.io).
        if provider.matches_host(bad):
            assert _covered_by_own_wildcard(provider, bad), (provider.name, bad)
    if pattern.startswith("*."):
        assert host_matches(pattern, "a.b." + pattern[2:]), "a wildcard matches several labels"


def test_bundled_wildcards_are_never_too_broad():
    for provider, pattern in HOST_CASES:
        if pattern.startswith("*."):
            assert pattern.count(".") >= 2, (provider.name, pattern)
