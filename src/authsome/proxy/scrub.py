"""Scrubbing injected secrets out of what the proxy hands back to the child.

A provider may reflect the request: an endpoint echoing headers, an error
quoting the key. Every occurrence of a secret, in its raw, URL-encoded and
base64 forms, is overwritten with a marker of the same length, so that a
``Content-Length`` stays true and the body can be relayed as it streams.

Streaming: a chunk is released at once except for its longest tail that could
be the start of a secret; that tail waits for the next chunk. A server-sent
event ends in a newline, which starts no secret, so events are not delayed.
"""

from __future__ import annotations

import base64
import re
from urllib.parse import quote, quote_plus

# Shorter values would match ordinary text (and are not real secrets).
_MIN_SECRET_LENGTH = 8
_MARKER = b"[authsome-redacted]"


def _marker(length: int) -> bytes:
    return (_MARKER + b"*" * max(0, length - len(_MARKER)))[:length]


def _base64_cores(raw: bytes) -> set[bytes]:
    """The base64 text of ``raw`` that is the same wherever it sits in a longer base64 payload."""
    cores: set[bytes] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).rstrip(b"=")
        start = 4 if offset else 0  # first quantum mixes in the preceding bytes
        end = len(encoded) - (0 if (offset + len(raw)) % 3 == 0 else 3)
        core = encoded[start:end]
        if len(core) >= _MIN_SECRET_LENGTH:
            cores.add(core)
            cores.add(core.replace(b"+", b"-").replace(b"/", b"_"))  # URL-safe alphabet
    return cores


def secret_patterns(values: list[str]) -> list[bytes]:
    """Every byte string to scrub for these secret values, longest first."""
    patterns: set[bytes] = set()
    for value in values:
        if not value or len(value) < _MIN_SECRET_LENGTH:
            continue
        raw = value.encode("utf-8")
        patterns.add(raw)
        patterns.add(quote(value, safe="").encode("ascii"))
        patterns.add(quote_plus(value, safe="").encode("ascii"))
        # Percent-encoding with lower-case hex digits (the secret's own letters keep their case).
        patterns.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(value, safe="")).encode("ascii"))
        if "/" in value:  # JSON encoders that escape the solidus ("\/")
            patterns.add(value.replace("/", "\\/").encode("utf-8"))
        patterns.add(base64.b64encode(raw))
        patterns.update(_base64_cores(raw))
    return sorted((p for p in patterns if len(p) >= _MIN_SECRET_LENGTH), key=len, reverse=True)


def injected_values(injection) -> list[str]:
    """The secret values of an ``Injection`` plus what was put on the wire for them."""
    values = list(getattr(injection, "secret_values", []))
    for _, header_value in list(injection.headers) + list(injection.query):
        values.append(header_value)
        # "Bearer sk-..." / "Basic dXNlcjpw...": the credential part alone.
        _, _, credential = header_value.partition(" ")
        if credential:
            values.append(credential)
    return values


class Scrubber:
    """Replaces secret patterns; ``stream()`` makes a per-body streaming scrubber."""

    def __init__(self, patterns: list[bytes]) -> None:
        self.patterns = patterns
        self._first_bytes = {p[:1] for p in patterns}
        self._shortest = min((len(p) for p in patterns), default=0)
        # One pass over short data (headers, small bodies) answers "anything to scrub?";
        # for long data, one substring search per pattern is faster than the alternation.
        self._any = re.compile(b"|".join(re.escape(p) for p in patterns)) if patterns else None

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def scrub(self, data: bytes) -> bytes:
        """Replace every complete occurrence in ``data``."""
        if len(data) < self._shortest or self._any is None:
            return data
        if len(data) <= 2048 and self._any.search(data) is None:
            return data
        for pattern in self.patterns:
            if pattern in data:
                data = data.replace(pattern, _marker(len(pattern)))
        return data

    def pending_tail(self, data: bytes) -> int:
        """Length of the longest suffix of ``data`` that begins some pattern."""
        longest = 0
        for pattern in self.patterns:
            start = max(0, len(data) - len(pattern) + 1)
            first = pattern[:1]
            position = data.find(first, start)
            while position != -1:
                if pattern.startswith(data[position:]):
                    longest = max(longest, len(data) - position)
                    break  # earlier positions give longer tails: keep the first hit
                position = data.find(first, position + 1)
        return longest

    def stream(self) -> StreamScrubber:
        return StreamScrubber(self)


class StreamScrubber:
    """Scrubs one body delivered in chunks; call ``feed`` per chunk and ``flush`` at the end."""

    def __init__(self, scrubber: Scrubber) -> None:
        self._scrubber = scrubber
        self._held = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._scrubber.scrub(self._held + chunk)
        keep = self._scrubber.pending_tail(data)
        if keep:
            self._held = data[-keep:]
            return data[:-keep]
        self._held = b""
        return data

    def feed_last(self, chunk: bytes) -> bytes:
        """The final chunk: nothing needs holding back."""
        data, self._held = self._held + chunk, b""
        return self._scrubber.scrub(data)

    def flush(self) -> bytes:
        data, self._held = self._held, b""
        return self._scrubber.scrub(data)
