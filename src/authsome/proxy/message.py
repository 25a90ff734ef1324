"""What the relay puts on the wire: the credential's header lines and query, re-framed bodies, hop-by-hop rules."""

from __future__ import annotations

from urllib.parse import quote, unquote_plus

from authsome.proxy import wire

_UNSAFE_IN_HEADER = (b"\r", b"\n", b"\0")
_NEVER_CONNECTION_SCOPED = frozenset({b"host", b"content-length", b"transfer-encoding"})


def with_query(target: bytes, params: list[tuple[str, str]]) -> bytes:
    """``target`` with each of ``params`` set (same-named parameters removed first)."""
    if not params:
        return target
    path, _, query = target.decode("ascii", "replace").partition("?")
    names = {name for name, _ in params}
    kept = [part for part in query.split("&") if part and unquote_plus(part.split("=", 1)[0]) not in names]
    kept += [f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in params]
    return (path + "?" + "&".join(kept)).encode("ascii")


class Prepared:
    """What an ``Injection`` puts on the wire, computed once per injection object."""

    __slots__ = ("injection", "dropped", "header_lines", "query", "scrubber")

    def __init__(self, injection, scrubber) -> None:
        self.injection = injection
        dropped = set(wire.HOP_BY_HOP)
        dropped.update(name.lower().encode("latin-1") for name in injection.replaces)
        dropped.update(name.lower().encode("latin-1") for name, _ in injection.headers)
        dropped.add(b"accept-encoding")  # scrubbing needs the body in plain text
        dropped.add(b"sec-websocket-extensions")  # and WebSocket frames uncompressed
        self.dropped = frozenset(dropped)
        lines = b"".join(
            b"%s: %s\r\n" % (name.encode("latin-1"), value.encode("latin-1")) for name, value in injection.headers
        )
        if any(bad in lines.replace(b"\r\n", b"") for bad in _UNSAFE_IN_HEADER):
            raise ValueError("the credential holds characters a header cannot carry")
        self.header_lines = lines + b"Accept-Encoding: identity\r\n"
        self.query = list(injection.query)
        self.scrubber = scrubber


def connection_scoped(head, dropped: frozenset) -> frozenset:
    """``dropped`` plus ``Connection`` and the headers it names (RFC 9110 7.6.1), except those that frame the message.

    ``Connection: content-length`` must not strip the length of a body the proxy passes on as it is
    (the receiver would read the body as the next message), nor ``Connection: host`` the Host.
    Every ``Connection`` field counts, not only the first.
    """
    value = head.index.get(b"connection")
    if value is None:
        return dropped
    if head.count(b"connection") == 1 and value.lower() in _SIMPLE_CONNECTION:
        return dropped | _CONNECTION  # the common "keep-alive" / "close": it names no other header
    fields = [field for name, field in head.headers if name.lower() == b"connection"]
    named = {token.strip().lower() for field in fields for token in field.split(b",")}
    return dropped | (named - _NEVER_CONNECTION_SCOPED) | _CONNECTION


_CONNECTION = frozenset({b"connection"})
_SIMPLE_CONNECTION = (b"keep-alive", b"close")


def body_frame(framing: str, piece: bytes) -> bytes:
    return wire.chunk(piece) if framing == "chunked" else piece
