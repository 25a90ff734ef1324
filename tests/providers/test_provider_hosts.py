"""Host normalisation and matching (DESIGN.md section 3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authsome.providers.hosts import host_matches, normalize_host, normalize_pattern


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("api.openai.com", "api.openai.com"),
        ("API.OpenAI.COM", "api.openai.com"),
        ("api.openai.com.", "api.openai.com"),
        ("127.0.0.1", "127.0.0.1"),
        ("localhost", "localhost"),
        ("a_b.example.com", "a_b.example.com"),
        ("xn--pi-6kc.openai.com", "xn--pi-6kc.openai.com"),
        ("\u0430pi.openai.com", "xn--pi-6kc.openai.com"),  # Cyrillic a
        ("m\u00fcnchen.de", "xn--mnchen-3ya.de"),
        ("M\u00dcNCHEN.DE.", "xn--mnchen-3ya.de"),
        ("\uff21\uff30\uff29.openai.com", "api.openai.com"),  # full-width letters are the same name in IDNA
        ("api.openai\u3002com", "api.openai.com"),  # ideographic full stop is a dot in IDNA
    ],
)
def test_normalize_host_canonical_forms(raw, expected):
    assert normalize_host(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        ".",
        "..",
        "a..b",
        ".a.b",
        "a.b..",
        "a.b:443",
        "user@a.b",
        "user:pw@a.b",
        "a b.com",
        " a.com",
        "a.com ",
        "a.com\n",
        "a.com\x00",
        "https://a.com",
        "a.com/path",
        "a.com?x",
        "a.com#f",
        "[::1]",
        "::1",
        "*.a.com",
        "-a.com",
        "a-.com",
        "a." + "b" * 64 + ".com",
        ".".join(["a" * 60] * 5),
        "a%2eb.com",
        "a\\b.com",
        None,
        42,
    ],
)
def test_normalize_host_refuses_non_hosts(raw):
    assert normalize_host(raw) is None


@pytest.mark.parametrize(
    "pattern,expected",
    [
        ("api.openai.com", "api.openai.com"),
        ("*.googleapis.com", "*.googleapis.com"),
        ("*.GoogleAPIs.com.", "*.googleapis.com"),
        ("*.com", None),
        ("*", None),
        ("*.", None),
        ("*.*.example.com", None),
        ("api.*.example", None),
        ("*api.example.com", None),
        ("a*.example.com", None),
        ("**.example.com", None),
        ("*.example.com:443", None),
        ("", None),
    ],
)
def test_normalize_pattern(pattern, expected):
    assert normalize_pattern(pattern) == expected


@pytest.mark.parametrize(
    "pattern,host,expected",
    [
        ("api.openai.com", "api.openai.com", True),
        ("api.openai.com", "API.OPENAI.COM.", True),
        ("api.openai.com", "api.openai.com.evil.test", False),
        ("api.openai.com", "evil-api.openai.com", False),
        ("api.openai.com", "evilapi.openai.com", False),
        ("api.openai.com", "x.api.openai.com", False),
        ("api.openai.com", "\u0430pi.openai.com", False),
        ("api.openai.com", "xn--pi-6kc.openai.com", False),
        ("api.openai.com", "api.openai.com:443", False),
        ("*.googleapis.com", "www.googleapis.com", True),
        ("*.googleapis.com", "a.b.googleapis.com", True),
        ("*.googleapis.com", "WWW.GOOGLEAPIS.COM.", True),
        ("*.googleapis.com", "googleapis.com", False),
        ("*.googleapis.com", ".googleapis.com", False),
        ("*.googleapis.com", "googleapis.com.evil.test", False),
        ("*.googleapis.com", "www.googleapis.com.evil.test", False),
        ("*.googleapis.com", "evilgoogleapis.com", False),
        ("*.googleapis.com", "www.evilgoogleapis.com", False),
        ("*.googleapis.com", "www.g\u043eogleapis.com", False),
        ("*.com", "evil.com", False),
        ("api.*.example", "api.x.example", False),
        ("not a pattern", "not a pattern", False),
    ],
)
def test_host_matches(pattern, host, expected):
    assert host_matches(pattern, host) is expected


LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
HOST = st.lists(LABEL, min_size=1, max_size=5).map(".".join)


@given(suffix=st.lists(LABEL, min_size=2, max_size=3).map(".".join), host=HOST)
def test_wildcard_matches_exactly_whole_label_subdomains(suffix, host):
    # Reference definition: the host's labels end with the suffix's labels and have more of them.
    host_labels, suffix_labels = host.split("."), suffix.split(".")
    expected = len(host_labels) > len(suffix_labels) and host_labels[-len(suffix_labels) :] == suffix_labels
    assert host_matches("*." + suffix, host) is expected
    assert host_matches("*." + suffix, "x." + suffix) is True
    assert host_matches("*." + suffix, suffix) is False


@given(a=HOST, b=HOST)
def test_exact_pattern_is_equality(a, b):
    assert host_matches(a, b) is (a == b)
    assert host_matches(a, a.upper() + ".") is True


@given(st.text(max_size=30))
def test_normalize_never_crashes_and_is_idempotent(text):
    canonical = normalize_host(text)
    if canonical is not None:
        assert canonical.isascii() and canonical == canonical.lower()
        assert normalize_host(canonical) == canonical
        assert ":" not in canonical and "/" not in canonical and "@" not in canonical
