"""HTTP/1.1 message reading on top of ``httptools`` (Node's llhttp parser).

llhttp does the parsing and the body framing (Content-Length, chunked) in C
and strictly: a request with both ``Content-Length`` and
``Transfer-Encoding``, a bad chunk size or a bare LF is an error, so the
proxy and the upstream cannot disagree on where a message ends (the proxy
re-frames every body it forwards from what llhttp delivered).

A reader turns the parser's callbacks into a queue of events, one of:
``Head`` (request line or status line and headers), ``bytes`` (a piece of
body, already de-chunked) and ``END``. Three things llhttp leaves to its user
are handled here: a limit on the size of a head, the bodiless response to a
``HEAD`` request, and a response body that ends when the connection closes.
"""

from __future__ import annotations

from collections import deque

import httptools

#: Largest request or response head (request line + headers) accepted.
MAX_HEAD_BYTES = 64 * 1024

END = None  # event: the message is complete


class HeadTooLarge(Exception):
    pass


class _SkipBody(Exception):
    """Raised from ``on_headers_complete`` to stop after a head that has no body (response to HEAD)."""


class Head:
    """A request or response head. ``headers``: (name, value) pairs as received.

    Defaults live on the class, so building one per message costs little.
    """

    method = b""
    target = b""
    status = 0
    reason = b""
    version = "1.1"
    keep_alive = True
    upgrade = False
    _framing: str | None = None

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.index: dict[bytes, bytes] = {}  # lower-case name -> first value (set when the head is complete)

    def get(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (lower case)."""
        return self.index.get(name)

    def count(self, name: bytes) -> int:
        if len(self.index) == len(self.headers):  # no name repeats: the common case
            return 1 if name in self.index else 0
        return sum(1 for key, _ in self.headers if key.lower() == name)

    def framing(self) -> str:
        """How the body is delimited: ``chunked``, ``length`` or ``none`` (``eof`` is decided by the reader)."""
        if self._framing is None:
            self._framing = self._find_framing()
        return self._framing

    def _find_framing(self) -> str:
        index = self.index
        if b"transfer-encoding" in index:
            # Chunked only when it is the final coding (RFC 9112 6.3); llhttp refuses any other
            # request, and a response with another final coding is delimited by the connection's end.
            codings = b",".join(v for k, v in self.headers if k.lower() == b"transfer-encoding")
            return "chunked" if codings.rsplit(b",", 1)[-1].strip().lower() == b"chunked" else "none"
        if b"content-length" in index:
            return "length"
        return "none"


class _Reader:
    """Feeds bytes from a socket to llhttp and queues the resulting events."""

    _parser_class: type

    def __init__(self, sock) -> None:
        self.sock = sock
        self.events: deque = deque()
        self._head: Head | None = None
        self._first_line = b""  # the request target, or a response's reason phrase
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_bytes = 0  # bytes fed since the current head began
        # Never less than the current head's size: every read that holds part of it, whole.
        self._head_bound = 0
        self._feeding = 0  # size of the read being parsed
        self._in_head = True
        self._parser = self._parser_class(self)
        #: After a protocol switch (CONNECT, Upgrade, ``101``): the bytes that followed the head.
        self.upgraded: bytes | None = None
        self.fed = 0  # bytes received (responses: since ``expect``)

    # -- httptools callbacks: as few as possible, each is a Python call per message --------------
    def on_url(self, url: bytes) -> None:
        self._first_line += url

    def on_status(self, status: bytes) -> None:
        self._first_line += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        headers = self._headers
        # Measured here too: the read that completes a head may be the one that takes it past the limit.
        # The exact measure is needed only when the upper bound is over the limit.
        if self._head_bound > MAX_HEAD_BYTES and (
            len(self._first_line) + 4 * len(headers) + sum(len(k) + len(v) for k, v in headers) > MAX_HEAD_BYTES
        ):
            raise HeadTooLarge()
        self._head = head = Head()
        head.headers = headers
        # Reversed, so that the first of repeated headers wins.
        head.index = {name.lower(): value for name, value in reversed(headers)}
        head.keep_alive = self._parser.should_keep_alive()
        first_line, self._first_line, self._headers = self._first_line, b"", []
        self._complete_head(head, first_line)  # may raise _SkipBody (a response to HEAD)
        self._in_head = False
        self._head_bytes = self._head_bound = 0
        self.events.append(head)

    def on_body(self, body: bytes) -> None:
        self.events.append(body)

    def on_message_complete(self) -> None:
        self.events.append(END)
        self._headers = []  # trailer fields, if any: not passed on
        self._in_head = True  # what follows starts the next message
        self._head_bound = self._feeding  # which may begin in this very read

    def _complete_head(self, head: Head, first_line: bytes) -> None:
        raise NotImplementedError

    # -- feeding --------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Parse ``data``; raises ``httptools.HttpParserError`` or ``HeadTooLarge``."""
        size = len(data)
        self.fed += size
        if self.upgraded is not None:  # no longer HTTP: keep the bytes for the relay
            self.upgraded += data
            return
        self._feeding = size
        if self._in_head:
            self._head_bytes += size
            self._head_bound += size
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self.upgraded = data[exc.args[0] :]
            self._in_head = False
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, HeadTooLarge):
                raise HeadTooLarge() from None
            raise
        if self._in_head and self._head_bytes > MAX_HEAD_BYTES:
            raise HeadTooLarge()


class RequestReader(_Reader):
    _parser_class = httptools.HttpRequestParser

    def _complete_head(self, head: Head, target: bytes) -> None:
        parser = self._parser
        head.method = parser.get_method()
        head.target = target
        head.version = parser.get_http_version()
        head.upgrade = parser.should_upgrade()


class ResponseReader(_Reader):
    """Reads responses; ``expect(method)`` before each request tells it what a response may carry."""

    _parser_class = httptools.HttpResponseParser

    def __init__(self, sock) -> None:
        super().__init__(sock)
        self._request_method = b"GET"
        self._pending = b""  # bytes of a head being parsed (to find where a bodiless head ends)
        self.eof_delimited = False
        #: Bytes the upstream sent after a message that cannot be explained: do not reuse.
        self.reusable = True

    def expect(self, method: bytes) -> None:
        """Before each request. Anything still queued was never asked for: the connection is not reused."""
        if self.events or self.upgraded is not None:
            self.reusable = False
        self._request_method = method
        self.eof_delimited = False
        self.fed = 0

    def _complete_head(self, head: Head, reason: bytes) -> None:
        head.status = status = self._parser.get_status_code()
        head.reason = reason
        head.upgrade = status == 101
        if self._request_method == b"HEAD" and status >= 200:
            raise _SkipBody()
        bodiless = status < 200 or status in (204, 304)
        self.eof_delimited = not bodiless and head.framing() == "none" and status != 101

    def feed(self, data: bytes) -> None:
        if self._in_head and self._request_method == b"HEAD":
            self._pending += data
        try:
            super().feed(data)
        except httptools.HttpParserCallbackError as exc:
            if not isinstance(exc.__context__, _SkipBody):
                raise
            self._finish_bodiless_head()
        if not self._in_head:
            self._pending = b""

    def _finish_bodiless_head(self) -> None:
        # llhttp stopped inside on_headers_complete; the head ends at the first blank line.
        head = self._head
        end = self._pending.find(b"\r\n\r\n")
        rest = self._pending[end + 4 :] if end != -1 else b""
        self.events.append(head)
        self.events.append(END)
        self._parser = self._parser_class(self)  # the old one is in its error state
        self._in_head = True
        self._pending = b""
        self._head_bytes = 0
        self._head_bound = self._feeding
        if rest:
            self.reusable = False

    def end_of_stream(self) -> bool:
        """The upstream closed: True when that legitimately ends the current (EOF-delimited) body."""
        self.reusable = False
        if self.eof_delimited and not self._in_head:
            self.events.append(END)
            self.eof_delimited = False
            return True
        return False
