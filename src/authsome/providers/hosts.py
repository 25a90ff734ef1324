"""Host names and host patterns: where a credential may be sent.

Security-critical and deliberately small. A host is compared in one canonical
form only: lower case, IDNA (punycode) for non-ASCII names, no trailing dot.
Anything that is not a plain DNS name (ports, userinfo, paths, spaces, empty
labels, brackets) is refused rather than guessed at.

A pattern is either an exact host (``api.openai.com``) or ``*.`` followed by a
suffix of at least two labels (``*.googleapis.com``), which matches one or
more whole labels in front of the suffix and never the bare suffix.
"""

from __future__ import annotations

_MAX_HOST_LENGTH = 253
_MAX_LABEL_LENGTH = 63
# Letters, digits, hyphen (RFC 952/1123), plus underscore, which real
# service hosts use; nothing else can appear in a canonical host.
_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


def _valid_label(label: str) -> bool:
    return (
        0 < len(label) <= _MAX_LABEL_LENGTH
        and all(ch in _LABEL_CHARS for ch in label)
        and not label.startswith("-")
        and not label.endswith("-")
    )


def normalize_host(host: str) -> str | None:
    """Return the canonical form of ``host``, or None if it is not a plain host name."""
    if not isinstance(host, str) or not host:
        return None
    if host.endswith("."):
        host = host[:-1]  # "example.com." is the same host as "example.com"
    if not host:
        return None
    if not host.isascii():
        try:
            # The standard IDNA codec maps case and the Unicode full stops,
            # then punycodes each label: "аpi.example" -> "xn--pi-7kc.example".
            host = host.encode("idna").decode("ascii")
        except (UnicodeError, ValueError):
            return None
        if host.endswith("."):
            host = host[:-1]
    host = host.lower()
    if len(host) > _MAX_HOST_LENGTH:
        return None
    if not all(_valid_label(label) for label in host.split(".")):
        return None
    return host


def normalize_pattern(pattern: str) -> str | None:
    """Canonical form of a host pattern, or None when it is neither a host nor a whole-label wildcard.

    A wildcard suffix needs at least two labels: ``*.com`` would send a
    credential almost anywhere.
    """
    if not isinstance(pattern, str):
        return None
    if pattern.startswith("*."):
        suffix = normalize_host(pattern[2:])
        if suffix is None or "." not in suffix:
            return None
        return "*." + suffix
    if "*" in pattern:
        return None
    return normalize_host(pattern)


def host_matches(pattern: str, host: str) -> bool:
    """True when ``host`` is allowed by ``pattern`` (exact host or whole-label wildcard)."""
    canonical_host = normalize_host(host)
    canonical_pattern = normalize_pattern(pattern)
    if canonical_host is None or canonical_pattern is None:
        return False
    if canonical_pattern.startswith("*."):
        suffix = canonical_pattern[1:]  # ".googleapis.com", dot included
        # The host has no empty labels, so whatever precedes the dot is one
        # or more whole labels; equality with the bare suffix is impossible.
        return canonical_host.endswith(suffix) and len(canonical_host) > len(suffix)
    return canonical_host == canonical_pattern
