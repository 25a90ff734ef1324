"""Bad input gets a clear error, never a traceback: provider definitions and CLI arguments.

Property-based (hypothesis, bounded examples, no deadline). In-process targets run many examples;
targets that start the real CLI run fewer, since each example is a process.
"""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authsome.errors import ProviderDefinitionError
from authsome.providers.parse import parse_provider
from tests.conftest import CLI, canary_key
from tests.provider_defs import api_key_provider, schema1_api_key_provider

EXAMPLES_INPROC = int(os.environ.get("AUTHSOME_FUZZ_INPROC", "400"))
EXAMPLES_CLI = int(os.environ.get("AUTHSOME_FUZZ_CLI", "30"))
SLOW = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large]

BASE = api_key_provider()
LEGACY = schema1_api_key_provider()
KEYS = sorted(
    {
        *BASE,
        *LEGACY,
        "flows",
        "docs_url",
        "fields",
        "oauth",
        "key_pattern",
        "key_pattern_hint",
        "query",
        "basic",
        "username",
        "secret",
        "pattern",
        "hint",
        "env",
        "authorization_url",
        "token_url",
        "device_authorization_url",
        "registration_url",
        "revocation_url",
        "scopes",
        "pkce",
    }
)
TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            ".",
            "..",
            "a..b",
            "*",
            "*.",
            "*.example.com",
            "**.example.com",
            "regex:.*",
            "regex:api\\.acme\\.example",
            "regex:[a-z0-9-]+\\.acme\\.example",
            "regex:(a|b)+",
            "regex:[",
            "http://h/",
            "https://api.acme.example/v1",
            "xn--",
            "xn--mnchen-3ya.de",
            "münchen.de",
            "API.ACME.EXAMPLE.",
            "1.2.3.4",
            "[::1]",
            "\x00",
            "\u202e",
            "a" * 300,
            "{base_url}/oauth",
            "ACME_API_KEY",
            "lower_env",
            "Authorization",
            "Bad Header",
            "sk-[",
            "(a+)+$",
            "Bearer",
            "oauth2",
            "pkce",
            "device_code",
            "dcr_pkce",
            "api_key",
        ]
    ),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | TEXT,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=12,
)


@st.composite
def provider_definitions(draw):
    """A valid definition (current or legacy) with a few fields replaced, deleted or nested junk added."""
    data = json.loads(json.dumps(draw(st.sampled_from([BASE, LEGACY]))))
    for _ in range(draw(st.integers(0, 4))):
        target = data
        if isinstance(data.get("api_key"), dict) and draw(st.booleans()):
            target = data["api_key"]
        key = draw(st.sampled_from(KEYS))
        action = draw(st.sampled_from(["set", "set", "delete"]))
        if action == "delete":
            target.pop(key, None)
        else:
            target[key] = draw(JSON)
    return data if draw(st.integers(0, 20)) else draw(JSON)


@settings(max_examples=EXAMPLES_INPROC, deadline=None, suppress_health_check=SLOW)
@given(provider_definitions())
def test_parse_provider_accepts_or_names_the_problem(data):
    try:
        provider = parse_provider(data, source="custom")
    except ProviderDefinitionError as err:
        assert err.exit_code == 2 and err.message and "Traceback" not in err.message
        return
    # Accepted: what it promises about hosts must hold (whole-label, IDNA, no trailing dot).
    for host in provider.hosts:
        assert host == host.lower().rstrip(".") and host, provider.hosts
        assert not host.startswith("regex:")


@pytest.fixture(scope="module")
def fuzz_home(tmp_path_factory):
    """One home for all CLI-argument examples: initialised, one openai connection."""
    home = tmp_path_factory.mktemp("fuzz") / "home"
    cli = CLI(home)
    assert cli("init", "--key-source", "file").returncode == 0
    cli.login_stdin("openai", canary_key())
    return cli


@settings(max_examples=EXAMPLES_CLI, deadline=None, suppress_health_check=SLOW)
@given(definition=provider_definitions(), raw=st.booleans())
def test_register_gives_a_documented_exit(fuzz_home, tmp_path_factory, definition, raw):
    path = tmp_path_factory.mktemp("prov") / "p.json"
    if raw:
        path.write_bytes(json.dumps(definition).encode()[: max(1, len(json.dumps(definition)) // 2)])  # truncated
    else:
        path.write_text(json.dumps(definition))
    proc = fuzz_home("register", str(path), "--json")
    assert proc.returncode in (0, 2), (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    document = json.loads(proc.stdout)
    if proc.returncode == 0:
        listed = fuzz_home("list", "--all", "--json")
        assert listed.returncode == 0, listed.stderr
        assert document["provider"] in {row["provider"] for row in json.loads(listed.stdout)}
    else:
        assert document["error"]["code"] == 2 and document["error"]["message"]


COMMANDS = [
    "init",
    "whoami",
    "doctor",
    "list",
    "inspect",
    "register",
    "login",
    "get",
    "export",
    "logout",
    "remove",
    "revoke",
    "set-default",
    "log",
    "version",
    "",
    "--version",
    "-h",
]
FLAGS = [
    "--json",
    "--all",
    "--connection",
    "-c",
    "--field",
    "-f",
    "--show-secret",
    "--format",
    "--force",
    "--stdin",
    "--from-env",
    "--no-browser",
    "--timeout",
    "--limit",
    "-n",
    "--key-source",
    "--scopes",
    "--",
]
WORDS = st.one_of(
    st.sampled_from(FLAGS),
    st.sampled_from(
        [
            "openai",
            "OpenAI",
            "cohere",
            "nope",
            "default",
            "api_key",
            "status",
            "env",
            "json",
            "shell",
            "file",
            "0",
            "-1",
            "1e309",
            "nan",
            "../x",
            "a/b",
            "..",
            "c" * 70,
        ]
    ),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20),
)


@settings(max_examples=EXAMPLES_CLI, deadline=None, suppress_health_check=SLOW)
@given(command=st.sampled_from(COMMANDS), words=st.lists(WORDS, max_size=6), as_json=st.booleans())
def test_cli_arguments_never_traceback(fuzz_home, command, words, as_json):
    argv = [command, *words] if command else list(words)
    if "login" in argv:
        argv += ["--timeout", "2"]  # never wait on a person; stdin is empty
    if as_json:
        argv.append("--json")
    proc = fuzz_home(*argv, timeout=60)
    assert 0 <= proc.returncode <= 9, (argv, proc.returncode, proc.stderr[-800:])
    assert proc.returncode != 1, (argv, proc.stderr[-800:])  # exit 1 is a bug by definition
    assert "Traceback" not in proc.stderr + proc.stdout, argv
    if as_json and proc.returncode != 0 and proc.stdout.strip() and "--help" not in argv and "-h" not in argv:
        assert json.loads(proc.stdout)["error"]["code"] == proc.returncode, (argv, proc.stdout)
