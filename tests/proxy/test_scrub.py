"""Scrubbing of injected secrets from relayed responses."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authsome.providers.model import Injection
from authsome.proxy.scrub import Scrubber, injected_values, secret_patterns

SECRET = "sk-live+abc/def=ghi_0123456789"


def scrubber(*values: str) -> Scrubber:
    return Scrubber(secret_patterns(list(values)))


def stream_all(s: Scrubber, chunks: list[bytes]) -> bytes:
    stream = s.stream()
    return b"".join(stream.feed(c) for c in chunks) + stream.flush()


@pytest.mark.parametrize(
    "encoded",
    [
        SECRET,
        quote(SECRET, safe=""),
        base64.b64encode(SECRET.encode()).decode(),
        base64.b64encode(b"user:" + SECRET.encode()).decode()[8:-4],  # inside a Basic token
        base64.urlsafe_b64encode(b"xy" + SECRET.encode()).decode(),
    ],
)
def test_every_encoding_is_scrubbed_and_length_kept(encoded):
    body = f'{{"error": "bad key {encoded} given"}}'.encode()
    out = scrubber(SECRET).scrub(body)
    assert SECRET.encode() not in out
    assert encoded.encode() not in out
    assert len(out) == len(body)


def test_short_values_are_not_patterns():
    assert secret_patterns(["short"]) == []


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.binary(max_size=50),
    suffix=st.binary(max_size=50),
    cuts=st.lists(st.integers(min_value=0, max_value=140), max_size=6),
)
def test_occurrence_straddling_chunks_is_scrubbed(prefix, suffix, cuts):
    body = prefix + SECRET.encode() + suffix + SECRET.encode()
    points = sorted({c for c in cuts if c < len(body)} | {0, len(body)})
    chunks = [body[a:b] for a, b in zip(points, points[1:], strict=False)]
    s = scrubber(SECRET)
    out = stream_all(s, chunks)
    assert out == s.scrub(body)
    assert SECRET.encode() not in out
    assert len(out) == len(body)


def test_stream_holds_back_only_a_possible_secret_prefix():
    stream = scrubber(SECRET).stream()
    assert stream.feed(b"data: one\n\n") == b"data: one\n\n"  # an SSE event is not delayed
    assert stream.feed(b"tail sk-li") == b"tail "
    assert stream.feed(b"ve+abc/def=ghi_0123456789 end").startswith(b"[authsome-redacted]")
    assert stream.flush() == b""


def test_injected_values_include_wire_forms():
    inj = Injection()
    token = base64.b64encode(b"api:" + SECRET.encode()).decode()
    inj.headers = [("Authorization", "Basic " + token)]
    inj.secret_values = [SECRET]
    values = injected_values(inj)
    assert token in values and SECRET in values
    assert token.encode() not in scrubber(*values).scrub(f"echo Basic {token}".encode())


def test_lower_case_percent_encoding_keeps_the_secret_case():
    value = "sk-AbC+dEf/GhI=jKl"
    lower_hex = quote(value, safe="").replace("%2B", "%2b").replace("%2F", "%2f").replace("%3D", "%3d")
    out = scrubber(value).scrub(f"url?key={lower_hex}".encode())
    assert lower_hex.encode() not in out
    assert b"sk-abc" not in [p[:6] for p in secret_patterns([value])]  # no lower-cased secret patterns


def test_json_escaped_solidus_is_scrubbed():
    body = ('{"key": "' + SECRET.replace("/", "\\/") + '"}').encode()
    assert b"[authsome-redacted]" in scrubber(SECRET).scrub(body)
