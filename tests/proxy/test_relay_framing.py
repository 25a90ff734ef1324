"""Message framing through the intercepting proxy, byte for byte.

A real ``ProxyServer`` (in a ``ProxyThread``) terminates TLS for ``localhost``
and relays to a real TLS upstream whose every received byte is kept
(``RawUpstream``), so each test controls the framing on both sides exactly.
What the upstream received is checked with a second, independent parser
(h11), never with the proxy's own.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time

import h11
import pytest

from authsome.proxy import relay as relay_module
from authsome.proxy import wire
from authsome.proxy.routes import Route
from authsome.proxy.runner import ProxyThread
from authsome.proxy.server import ProxyServer

from .tls_helpers import RawUpstream, bearer_injection, connect_through, write_test_pki

KEY = "sk-unit-framing-0123456789abcdef"
WAIT = 10.0  # bound on every wait of a test


def injection():
    return bearer_injection(KEY)


# -- an independent parser for what the upstream received ---------------------------------------------------


def parse_requests(raw: bytes) -> tuple[list[tuple[bytes, bytes, dict, bytes]], bool]:
    """(complete requests as (method, target, headers, body), True when bytes were left over or invalid)."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)
    conn.receive_data(raw)
    conn.receive_data(b"")
    requests, current = [], None
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError:
            return requests, True
        if isinstance(event, h11.Request):
            current = [event.method, event.target, dict(event.headers), b""]
        elif isinstance(event, h11.Data):
            current[3] += event.data
        elif isinstance(event, h11.EndOfMessage):
            requests.append(tuple(current))
            current = None
            try:  # answer it (to h11 only), so that it parses the next request
                conn.send(h11.Response(status_code=200, headers=[("content-length", "0")]))
                conn.send(h11.EndOfMessage())
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return requests, bool(conn.trailing_data[0])
        else:  # NEED_DATA, PAUSED, ConnectionClosed
            return requests, current is not None


# -- the client side -------------------------------------------------------------------------------------------


class Client:
    """A raw TLS client through CONNECT; responses are parsed with h11 (not the proxy's parser)."""

    def __init__(self, tls: ssl.SSLSocket, authority: str) -> None:
        self.tls = tls
        self.authority = authority
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=1 << 20)

    def send(self, data: bytes) -> None:
        self.tls.sendall(data)

    def request(self, method: str = "GET", target: str = "/", headers: str = "", body: bytes = b"") -> None:
        self.send(f"{method} {target} HTTP/1.1\r\nHost: {self.authority}\r\n{headers}\r\n".encode() + body)

    def expect(self, method: str = "GET") -> None:
        """Tell h11 which request the next response answers (only the method matters to it)."""
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
        self.h11.send(h11.Request(method=method, target="/", headers=[("host", "x"), ("content-length", "0")]))
        self.h11.send(h11.EndOfMessage())

    def next_event(self):
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            try:
                data = self.tls.recv(65536)
            except (ssl.SSLError, ConnectionResetError):
                data = b""
            self.h11.receive_data(data)

    def response(self, method: str = "GET") -> tuple[int, dict, bytes, list[int]]:
        """(status, headers, body, informational statuses) of the next response."""
        if self.h11.their_state is not h11.SEND_RESPONSE:
            self.expect(method)
        informational, body = [], b""
        while True:
            event = self.next_event()
            if isinstance(event, h11.InformationalResponse):
                informational.append(event.status_code)
            elif isinstance(event, h11.Response):
                status, headers = event.status_code, dict(event.headers)
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return status, headers, body, informational
            else:
                raise AssertionError(f"unexpected {event!r}")

    def read_raw(self, timeout: float = WAIT) -> tuple[bytes, bool]:
        """Everything until the proxy closes: (bytes, True when it closed rather than timed out)."""
        data = b""
        self.tls.settimeout(timeout)
        while True:
            try:
                chunk = self.tls.recv(65536)
            except TimeoutError:
                return data, False
            except (ssl.SSLError, ConnectionResetError):
                return data, True
            if not chunk:
                return data, True
            data += chunk

    def closed_by_proxy(self) -> bool:
        data, closed = self.read_raw()
        return closed and data == b""

    def close(self) -> None:
        self.tls.close()


class Env:
    def __init__(self, tmp_path) -> None:
        self.ca, self.cert, self.key = write_test_pki(tmp_path)
        self.server = ProxyServer(
            [Route("unit", "default", ["localhost"], injection)],
            username="authsome",
            password="pw",
            extra_ca_bundle=self.ca,
        )
        self.run_ca = str(tmp_path / "run-ca.pem")
        (tmp_path / "run-ca.pem").write_bytes(self.server.ca.cert_pem)
        self.thread = ProxyThread(self.server)
        self.address = self.thread.start()[:2]
        self.upstreams: list[RawUpstream] = []
        self.clients: list[Client] = []

    def upstream(self, handler, timeout: float = WAIT) -> RawUpstream:
        upstream = RawUpstream(self.cert, self.key, handler, timeout=timeout)
        self.upstreams.append(upstream)
        return upstream

    def client(self, upstream: RawUpstream) -> Client:
        authority = f"localhost:{upstream.port}"
        tls = connect_through(self.address, authority, "pw", self.run_ca, "localhost")
        tls.settimeout(WAIT)
        client = Client(tls, authority)
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.thread.stop()
        for upstream in self.upstreams:
            upstream.close()


@pytest.fixture
def env(tmp_path):
    environment = Env(tmp_path)
    yield environment
    environment.close()


@pytest.fixture(params=[False, True], ids=["few-fds", "fds-over-1024"])
def crowded(request):
    """Optionally hold 1100 descriptors first, so the proxy's sockets get numbers select() cannot watch."""
    fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100 if request.param else 0)]
    try:
        yield
    finally:
        for fd in fds:
            os.close(fd)


def answering(answer):
    """A keep-alive upstream handler: ``answer(head, body) -> bytes | None`` (None closes)."""

    def handler(conn) -> None:
        while (request := conn.read_request()) is not None:
            reply = answer(*request)
            if reply is None:
                return
            conn.send(reply)

    return handler


def ok(body: bytes = b"ok", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def wait_until(condition, timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


# -- response framing ------------------------------------------------------------------------------------------


def test_eof_delimited_body_arrives_whole_and_the_client_is_told_connection_close(env):
    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst part, ")
        time.sleep(0.05)
        conn.send(b"second part, ")
        time.sleep(0.05)
        conn.send(b"end")
        # returning closes the connection: that ends the body

    upstream = env.upstream(handler)
    client = env.client(upstream)
    client.request(target="/stream")
    status, headers, body, _ = client.response()
    assert status == 200 and body == b"first part, second part, end"
    assert headers.get(b"connection", b"").lower() == b"close"
    assert b"content-length" not in headers and b"transfer-encoding" not in headers
    assert client.closed_by_proxy()


@pytest.mark.parametrize("framing", [b"Content-Length: 1000", b"Transfer-Encoding: chunked"])
def test_head_then_get_on_one_kept_alive_connection(env, framing):
    """A response to HEAD announces a body it does not carry, by either framing."""

    def answer(head, body):
        if head.startswith(b"HEAD "):
            return b"HTTP/1.1 200 OK\r\n%s\r\nContent-Type: text/plain\r\n\r\n" % framing
        return ok(b"hello")

    upstream = env.upstream(answering(answer))
    client = env.client(upstream)
    name, value = framing.lower().split(b": ")
    for _ in range(2):
        client.request("HEAD", "/h")
        status, headers, body, _ = client.response("HEAD")
        assert (status, body, headers[name]) == (200, b"", value)
        client.request("GET", "/g")
        assert client.response("GET")[2] == b"hello"
    requests, leftover = parse_requests(upstream.received)
    assert [(m, t) for m, t, _, _ in requests] == [(b"HEAD", b"/h"), (b"GET", b"/g")] * 2 and not leftover
    assert len(upstream.conns) == 1


def test_unrequested_extra_response_never_answers_the_next_request(env):
    def answer(head, body):
        if b" /first " in head:
            return ok(b"first") + ok(b"evil")  # one write: the extra response arrives with the real one
        return ok(b"second")

    upstream = env.upstream(answering(answer))
    client = env.client(upstream)
    client.request(target="/first")
    assert client.response()[2] == b"first"
    client.request(target="/second")
    assert client.response()[2] == b"second"


def test_upstream_connection_close_stays_upstream_and_the_next_request_gets_a_new_upstream(env):
    def handler(conn):
        conn.read_request()
        conn.send(ok(b"bye", b"Connection: close\r\n"))

    upstream = env.upstream(handler)
    client = env.client(upstream)
    client.request(target="/one")
    status, headers, body, _ = client.response()
    # Connection is hop-by-hop: the upstream's "close" ends the upstream connection only.
    assert (status, body) == (200, b"bye") and b"connection" not in headers
    client.request(target="/two")  # same client connection
    assert client.response()[:3:2] == (200, b"bye")
    assert len(upstream.conns) == 2


def test_informational_responses_reach_the_client_before_the_final_one(env):
    upstream = env.upstream(
        answering(lambda head, body: b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" + ok(b"final"))
    )
    client = env.client(upstream)
    client.request(target="/hints")
    status, _, body, informational = client.response()
    assert (status, body, informational) == (200, b"final", [103])
    client.request(target="/again")  # still usable afterwards
    assert client.response()[2] == b"final"


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_status_with_content_length_keeps_the_connection_in_step(env, status):
    def answer(head, body):
        if b" /empty " in head:
            return b"HTTP/1.1 %d Nothing\r\nContent-Length: 7\r\n\r\n" % status
        return ok(b"next")

    upstream = env.upstream(answering(answer))
    client = env.client(upstream)
    client.request(target="/empty")
    assert client.response()[:3:2] == (status, b"")
    client.request(target="/after")
    assert client.response()[2] == b"next"


# -- request bodies: re-framed, streamed -----------------------------------------------------------------------


def test_chunked_request_body_is_reframed_as_valid_chunked_with_the_same_bytes(env):
    upstream = env.upstream(answering(lambda head, body: ok()))
    client = env.client(upstream)
    client.request("POST", "/upload", "Transfer-Encoding: chunked\r\n")
    for piece in (b"4;ext=secret-ish\r\nabcd\r\n", b"6\r\nefghij\r\n", b"1", b"\r\nk\r\n", b"0\r\nX-Sum: 11\r\n\r\n"):
        client.send(piece)
        time.sleep(0.02)
    assert client.response()[0] == 200
    requests, leftover = parse_requests(upstream.received)
    assert len(requests) == 1 and not leftover
    method, target, headers, body = requests[0]
    assert (method, target, body) == (b"POST", b"/upload", b"abcdefghijk")
    assert headers[b"transfer-encoding"] == b"chunked" and b"content-length" not in headers
    assert b"ext=secret-ish" not in upstream.received
    assert headers[b"authorization"] == f"Bearer {KEY}".encode()


def test_content_length_body_is_streamed_piece_by_piece(env):
    first_piece_arrived = threading.Event()

    def handler(conn):
        head = conn.read_head()
        assert b"content-length: 15" in head.lower()
        assert conn.read_exact(5) == b"first"
        first_piece_arrived.set()
        assert conn.read_exact(10) == b"secondpart"
        conn.send(ok(b"got it"))

    upstream = env.upstream(handler)
    client = env.client(upstream)
    client.request("PUT", "/put", "Content-Length: 15\r\n", b"first")
    # The upstream sees the first piece before the client sent the rest: nothing is buffered whole.
    assert first_piece_arrived.wait(WAIT)
    client.send(b"secondpart")
    assert client.response()[:3:2] == (200, b"got it")
    assert upstream.errors == []
    requests, leftover = parse_requests(upstream.received)
    assert [r[3] for r in requests] == [b"firstsecondpart"] and not leftover


def test_large_chunked_request_body_survives_reframing(env):
    payload = bytes(range(256)) * 4096  # 1 MiB
    upstream = env.upstream(answering(lambda head, body: ok(b"%d" % len(body))))
    client = env.client(upstream)
    client.request("POST", "/big", "Transfer-Encoding: chunked\r\n")
    for i in range(0, len(payload), 50_000):
        piece = payload[i : i + 50_000]
        client.send(b"%x\r\n%s\r\n" % (len(piece), piece))
    client.send(b"0\r\n\r\n")
    assert client.response()[2] == b"%d" % len(payload)
    requests, leftover = parse_requests(upstream.received)
    assert len(requests) == 1 and requests[0][3] == payload and not leftover


# -- smuggling attempts: the upstream never sees two requests where the client framed one ------------------------

SMUGGLED = "GET /smuggled HTTP/1.1\r\nHost: {authority}\r\n\r\n"


@pytest.mark.parametrize(
    "head, body",
    [
        ("Content-Length: {n}\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n{smuggled}"),
        ("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", "{hexn}\r\n{smuggled}\r\n0\r\n\r\n"),
        ("Transfer-Encoding: chunked\r\n", "zz\r\n{smuggled}\r\n0\r\n\r\n"),
        ("Transfer-Encoding: chunked\r\n", "0x5\r\nhello\r\n0\r\n\r\n{smuggled}"),
        ("Transfer-Encoding: chunked\r\n", "5 \r\nhello\r\n0\r\n\r\n{smuggled}"),
        ("Transfer-Encoding: xchunked\r\n", "0\r\n\r\n{smuggled}"),
        ("Transfer-Encoding: chunked, identity\r\n", "0\r\n\r\n{smuggled}"),
        ("Transfer-Encoding:\r\n chunked\r\n", "0\r\n\r\n{smuggled}"),
        ("Transfer-Encoding: chunked\r\n", "1000000000000000a\r\n{smuggled}\r\n0\r\n\r\n"),
        ("Content-Length: 0\r\nContent-Length: {n}\r\n", "{smuggled}"),
        ("Content-Length: +{n}\r\n", "{smuggled}"),
        ("Content-Length: {n}\r\n", "{smuggled}"),  # well-formed: the hidden request is only a body
        ("Transfer-Encoding: chunked\r\n", "{hexn}\r\n{smuggled}\r\n0\r\n\r\n"),  # well-formed, in a chunk
    ],
    ids=[
        "cl-te",
        "te-cl",
        "bad-chunk-size",
        "hex-prefix-chunk-size",
        "space-after-chunk-size",
        "xchunked",
        "chunked-then-identity",
        "te-obs-fold",
        "chunk-size-overflow",
        "two-content-lengths",
        "plus-content-length",
        "hidden-in-length-body",
        "hidden-in-chunk",
    ],
)
@pytest.mark.parametrize("split", [False, True], ids=["one-write", "head-first"])
def test_a_request_hidden_in_a_body_never_reaches_the_upstream_as_a_request(env, head, body, split):
    upstream = env.upstream(answering(lambda h, b: ok()))
    client = env.client(upstream)
    smuggled = SMUGGLED.format(authority=client.authority)
    values = {"n": len(smuggled), "hexn": f"{len(smuggled):x}", "smuggled": smuggled}
    # Connection: close, so that an accepted outer request ends with the connection (no keep-alive wait).
    head_bytes = (
        f"POST /outer HTTP/1.1\r\nHost: {client.authority}\r\nConnection: close\r\n{head.format(**values)}\r\n"
    ).encode()
    body_bytes = body.format(**values).encode()
    if split:
        client.send(head_bytes)
        time.sleep(0.1)
        try:
            client.send(body_bytes)
        except OSError:
            pass  # the proxy refused the head already
    else:
        client.send(head_bytes + body_bytes)
    answer, _ = client.read_raw()
    requests, _ = parse_requests(upstream.received)
    targets = [target for _, target, _, _ in requests]
    assert b"/smuggled" not in targets
    assert len(requests) <= 1
    well_formed = head in ("Content-Length: {n}\r\n", "Transfer-Encoding: chunked\r\n") and body.startswith(
        ("{smuggled}", "{hexn}")
    )
    if well_formed:  # accepted: one request that carries the hidden one as its body, byte for byte
        assert [(t, b) for _, t, _, b in requests] == [(b"/outer", smuggled.encode())]
        assert answer.startswith(b"HTTP/1.1 200 ")
    else:  # refused: nothing of it is a complete request upstream
        assert requests == []
    # The client saw at most one response, never one for the hidden request.
    assert answer.count(b"HTTP/1.1 ") <= 1


def test_request_trailers_are_not_promoted_to_headers(env):
    upstream = env.upstream(answering(lambda h, b: ok()))
    client = env.client(upstream)
    client.request(
        "POST", "/t", "Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\nX-Promoted: from-trailer\r\n\r\n"
    )
    assert client.response()[0] == 200
    requests, _ = parse_requests(upstream.received)
    assert len(requests) == 1 and b"x-promoted" not in requests[0][2]


def test_request_with_upgrade_header_and_a_body_is_refused_and_reaches_no_upstream(env):
    upstream = env.upstream(answering(lambda head, body: ok(body)))
    client = env.client(upstream)
    client.request(
        "POST",
        "/h2c",
        "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"
        "Content-Length: 5\r\n",
        b"hello",
    )
    status, _, body, _ = client.response()
    assert status == 400 and b"Upgrade request with a body" in body
    assert upstream.conns == []


def test_connection_cannot_strip_the_headers_that_frame_a_request(env):
    # Connection-scoped headers are dropped on the way, but never Content-Length, Transfer-Encoding or
    # Host: without its length the body (a whole request here) would reach the upstream as a request.
    upstream = env.upstream(answering(lambda h, b: ok()))
    client = env.client(upstream)
    smuggled = SMUGGLED.format(authority=client.authority)
    client.send(
        (
            f"POST /outer HTTP/1.1\r\nHost: {client.authority}\r\n"
            f"Connection: Content-Length, Transfer-Encoding, Host, X-Hop\r\nX-Hop: 1\r\n"
            f"Content-Length: {len(smuggled)}\r\n\r\n{smuggled}"
        ).encode()
    )
    status, _, _, _ = client.response()
    assert status == 200
    requests, _ = parse_requests(upstream.received)
    assert [target for _, target, _, _ in requests] == [b"/outer"]
    _, _, headers, body = requests[0]
    names = set(headers)  # h11 gives lower-case names
    assert {b"host", b"content-length"} <= names and not {b"connection", b"x-hop"} & names
    assert body == smuggled.encode()


def test_every_connection_field_is_honoured_in_both_directions(env):
    """Two Connection fields: the headers the second one names are hop-by-hop too."""
    upstream = env.upstream(
        answering(
            lambda h, b: ok(b"fine", b"Connection: keep-alive\r\nConnection: X-Up-Hop\r\nX-Up-Hop: 1\r\nX-End: 2\r\n")
        )
    )
    client = env.client(upstream)
    client.request("GET", "/", "Connection: keep-alive\r\nConnection: X-Hop\r\nX-Hop: 1\r\nX-End-To-End: 2\r\n")
    status, headers, body, _ = client.response()
    assert (status, body) == (200, b"fine")
    assert b"x-end" in headers and not {b"connection", b"x-up-hop"} & set(headers)
    requests, _ = parse_requests(upstream.received)
    names = set(requests[0][2])
    assert b"x-end-to-end" in names and not {b"connection", b"x-hop"} & names
    client.request("GET", "/again")  # "keep-alive" was honoured: same connection
    assert client.response()[2] == b"fine" and len(upstream.conns) == 1


# -- Expect: 100-continue --------------------------------------------------------------------------------------


def test_expect_100_continue_when_the_upstream_answers_100(crowded, env):
    def handler(conn):
        head = conn.read_head()
        assert b"expect: 100-continue" in head.lower()
        conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        conn.send(ok(conn.read_exact(5)))

    upstream = env.upstream(handler)
    client = env.client(upstream)
    client.request("POST", "/c", "Expect: 100-continue\r\nContent-Length: 5\r\n")
    client.expect("POST")
    assert isinstance(event := client.next_event(), h11.InformationalResponse) and event.status_code == 100
    client.send(b"hello")
    status, _, body, _ = client.response()
    assert (status, body) == (200, b"hello") and upstream.errors == []


def test_expect_100_continue_when_the_upstream_refuses_at_once(crowded, env):
    def handler(conn):
        conn.read_head()
        conn.send(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 6\r\n\r\ndenied")
        conn.drain()  # keep reading: any body byte would be recorded

    upstream = env.upstream(handler)
    client = env.client(upstream)
    client.request("POST", "/c", "Expect: 100-continue\r\nContent-Length: 5\r\n")
    status, headers, body, informational = client.response("POST")
    assert (status, body, informational) == (401, b"denied", [])
    # The client never sent its body, so the connection cannot continue: the proxy closes it.
    assert client.closed_by_proxy()
    assert wait_until(lambda: upstream.conns and upstream.conns[0].raw.endswith(b"\r\n\r\n"))
    assert upstream.received.count(b"\r\n\r\n") == 1 and upstream.received.startswith(b"POST /c ")


TOO_BIG = b"HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Length: 8\r\n\r\ntoo big\n"


def upload_until_refused(client, total: int, piece_size: int) -> tuple[int, bytes]:
    """POST ``total`` bytes until the proxy stops taking them; (bytes sent, raw answer)."""
    client.request("POST", "/upload", f"Content-Length: {total}\r\n")
    piece, sent = b"x" * piece_size, 0
    client.tls.settimeout(2)
    try:
        while sent < total:
            client.tls.sendall(piece)
            sent += len(piece)
    except OSError:
        pass  # the proxy stopped reading (a timeout) or closed: the answer is on its way
    client.tls.settimeout(WAIT)
    return sent, client.read_raw()[0]


def test_upstream_answering_413_and_closing_mid_upload_reaches_the_client(env):
    def handler(conn):
        conn.read_head()
        conn.read_exact(64 * 1024)
        conn.send(TOO_BIG)
        # returning closes the connection with the rest of the upload unread

    total = 16 * 1024 * 1024
    sent, data = upload_until_refused(env.client(env.upstream(handler)), total, 16384)
    assert data.startswith(b"HTTP/1.1 413 "), data[:200]
    assert data.endswith(b"too big\n")
    assert sent < total


def test_an_early_413_stops_the_upload_even_when_the_upstream_keeps_reading(crowded, env):
    """Like nginx: answer 413, then read and drop the rest (lingering close); the proxy must stop sending."""

    def handler(conn):
        conn.read_head()
        conn.read_exact(64 * 1024)
        conn.send(TOO_BIG)
        conn.tls.settimeout(3)
        conn.drain()  # until the proxy closes (or 3 s pass)

    total = 256 * 1024 * 1024
    upstream = env.upstream(handler)
    sent, data = upload_until_refused(env.client(upstream), total, 65536)
    assert data.startswith(b"HTTP/1.1 413 "), data[:200]
    assert data.endswith(b"too big\n")
    assert sent < total
    # Without the watch, the proxy pushes the whole body into a draining upstream.
    assert len(upstream.conns[0].raw) < total // 4


# -- a broken upstream ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        b"this is not http at all\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBroken header line\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
        b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
    ],
    ids=["garbage", "header-without-colon", "cl-and-te", "negative-length", "two-lengths", "bad-status", "bare-lf"],
)
def test_upstream_garbage_is_a_502_before_any_response_byte(env, reply):
    def handler(conn):
        conn.read_request()
        conn.send(reply)
        conn.drain()

    upstream = env.upstream(handler)
    client = env.client(upstream)
    client.request(target="/garbage")
    data, closed = client.read_raw()
    assert data.startswith(b"HTTP/1.1 502 "), data[:200]
    assert data.count(b"HTTP/1.1 ") == 1 and closed


@pytest.mark.parametrize(
    "partial",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n01234",
    ],
    ids=["length", "chunked-between-chunks", "chunked-mid-chunk"],
)
def test_upstream_closing_mid_body_closes_the_client_connection(env, partial):
    def handler(conn):
        conn.read_request()
        conn.send(partial)

    upstream = env.upstream(handler)
    client = env.client(upstream)
    client.request(target="/cut")
    data, closed = client.read_raw()
    assert closed, "the client connection hung after the upstream closed mid-body"
    assert data.startswith(b"HTTP/1.1 200 ")
    assert b"01234" in data
    # The client must not be shown a complete message: no last chunk, no full length.
    assert not data.endswith(b"0\r\n\r\n")


@pytest.mark.parametrize(
    "filler",
    [
        b"".join(b"X-Filler-%d: %s\r\n" % (i, b"f" * 1000) for i in range(200)),  # far over 64 KiB
        b"X-Filler: " + b"f" * (64 * 1024 + 4096) + b"\r\n",  # one field just over it
    ],
    ids=["far-over", "just-over"],
)
def test_response_head_over_64_kib_is_a_502_or_a_close(env, filler):
    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\n" + filler + b"Content-Length: 2\r\n\r\nok")
        conn.drain()

    upstream = env.upstream(handler)
    client = env.client(upstream)
    client.request(target="/big-head")
    data, closed = client.read_raw()
    assert closed
    assert data == b"" or data.startswith(b"HTTP/1.1 502 "), data[:100]


# -- WebSocket-style upgrade -------------------------------------------------------------------------------------


def test_101_with_bytes_after_the_head_and_client_bytes_sent_with_the_request(env):
    got_client_bytes = threading.Event()

    def handler(conn):
        conn.read_head()
        conn.send(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: x\r\n\r\n\x81\x05early"
        )
        assert conn.read_exact(4) == b"\x82\x02hi"
        got_client_bytes.set()
        conn.send(b"\x81\x04late")

    upstream = env.upstream(handler)
    client = env.client(upstream)
    # Frame bytes sent right behind the upgrade request: the upstream must get them after its 101.
    client.request(
        "GET",
        "/ws",
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n",
        b"\x82\x02hi",
    )
    data = b""
    while not data.endswith(b"\x81\x04late"):
        chunk = client.tls.recv(65536)
        assert chunk, data
        data += chunk
    assert data.startswith(b"HTTP/1.1 101 ")
    assert data.endswith(b"\r\n\r\n\x81\x05early\x81\x04late")
    assert got_client_bytes.is_set() and upstream.errors == []


# -- timeouts, load, shutdown ------------------------------------------------------------------------------------


@pytest.fixture
def short_head_timeout(monkeypatch):
    # relay.py imported HEAD_TIMEOUT by name: both copies are shortened.
    monkeypatch.setattr(wire, "HEAD_TIMEOUT", 1.0)
    monkeypatch.setattr(relay_module, "HEAD_TIMEOUT", 1.0)


def test_idle_intercepted_client_is_closed_after_the_head_timeout(env, short_head_timeout):
    upstream = env.upstream(answering(lambda h, b: ok()))
    client = env.client(upstream)
    client.request(target="/once")
    assert client.response()[0] == 200
    assert client.closed_by_proxy()  # within WAIT, although the client never closes


def test_client_sending_nothing_is_closed_after_the_head_timeout(env, short_head_timeout):
    with socket.create_connection(env.address, timeout=WAIT) as sock:
        assert sock.recv(100) == b""


def test_client_trickling_a_head_is_closed_after_the_head_timeout(env, short_head_timeout):
    upstream = env.upstream(answering(lambda h, b: ok()))
    client = env.client(upstream)
    client.send(b"GET /slow HTTP/1.1\r\n")
    client.tls.settimeout(0.2)
    closed = False
    deadline = time.monotonic() + WAIT
    while not closed and time.monotonic() < deadline:
        try:
            client.send(b"X: y\r\n")  # a header line every 0.2 s: never idle for a whole second
            closed = client.tls.recv(100) == b""
        except TimeoutError:
            continue  # nothing from the proxy yet (or only a TLS session ticket)
        except (ssl.SSLError, OSError):
            closed = True
    assert closed
    assert upstream.conns == []


def proxy_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "authsome-proxy-conn")


def test_many_concurrent_kept_alive_connections_are_all_served_and_their_threads_end(env):
    baseline = proxy_threads()
    upstream = env.upstream(answering(lambda head, body: ok(head.split(b" ")[1])))
    errors: list[BaseException] = []
    start = threading.Barrier(50, timeout=WAIT * 3)

    def worker(n: int) -> None:
        try:
            client = env.client(upstream)
            start.wait()
            for i in range(20):
                path = f"/c{n}/r{i}"
                client.request(target=path)
                status, _, body, _ = client.response()
                assert (status, body) == (200, path.encode())
            client.close()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    requests, _ = parse_requests(b"".join(bytes(c.raw) for c in upstream.conns[:1]))
    assert len(requests) == 20
    assert sum(len(parse_requests(bytes(c.raw))[0]) for c in upstream.conns) == 1000
    assert wait_until(lambda: not env.server._clients)
    assert wait_until(lambda: proxy_threads() <= baseline)


def test_close_ends_an_idle_plain_connection_promptly(env):
    with socket.create_connection(env.address, timeout=WAIT) as sock:
        sock.sendall(b"GET http://127.0.0.1:9/ HTTP/1.1\r\n")  # an incomplete head: the proxy waits
        assert wait_until(lambda: env.server._clients)
        env.thread.stop(timeout=WAIT)
        assert not env.thread._thread.is_alive()  # the accept loop ended within the bounded join
        assert sock.recv(100) == b""
    assert wait_until(lambda: not env.server._clients)


def test_close_ends_a_blind_tunnel_promptly(env):
    echo = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def serve():
        conn, _ = echo.accept()
        accepted.append(conn)
        while data := conn.recv(100):
            conn.sendall(data)
        conn.close()  # the tunnel's far end goes away when the proxy's side does

    threading.Thread(target=serve, daemon=True).start()
    try:
        with socket.create_connection(env.address, timeout=WAIT) as sock:
            target = f"127.0.0.1:{echo.getsockname()[1]}"  # no route: a blind tunnel
            sock.sendall(
                f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: Basic YXV0aHNvbWU6cHc=\r\n\r\n".encode()
            )
            assert sock.recv(100).startswith(b"HTTP/1.1 200")
            sock.sendall(b"ping")
            assert sock.recv(100) == b"ping"
            env.thread.stop(timeout=WAIT)
            assert sock.recv(100) == b""
        assert wait_until(lambda: not env.server._clients)
    finally:
        echo.close()
        for conn in accepted:
            conn.close()


def test_close_ends_an_intercepted_connection_promptly(env):
    upstream = env.upstream(answering(lambda h, b: ok()))
    client = env.client(upstream)
    client.request(target="/before")
    assert client.response()[0] == 200
    env.thread.stop(timeout=WAIT)
    data, closed = client.read_raw(timeout=3)  # well under the 60 s keep-alive wait
    assert closed and data == b""


def test_close_ends_a_blind_tunnel_to_a_quiet_upstream_promptly(env):
    quiet = socket.create_server(("127.0.0.1", 0))
    accepted = []
    threading.Thread(target=lambda: accepted.append(quiet.accept()[0]), daemon=True).start()
    try:
        with socket.create_connection(env.address, timeout=WAIT) as sock:
            target = f"127.0.0.1:{quiet.getsockname()[1]}"
            sock.sendall(
                f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: Basic YXV0aHNvbWU6cHc=\r\n\r\n".encode()
            )
            assert sock.recv(100).startswith(b"HTTP/1.1 200")
            assert wait_until(lambda: accepted)
            env.thread.stop(timeout=WAIT)
            assert sock.recv(100) == b""
        assert wait_until(lambda: not env.server._clients, timeout=5)
    finally:
        quiet.close()
        for conn in accepted:
            conn.close()


@pytest.fixture
def short_io_timeout(monkeypatch):
    monkeypatch.setattr(wire, "IO_TIMEOUT", 1.0)
    monkeypatch.setattr(relay_module, "IO_TIMEOUT", 1.0)


def test_intercepted_upstream_stalling_mid_body_is_cut_after_the_io_timeout(env, short_io_timeout):
    release = threading.Event()

    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        release.wait(WAIT * 2)  # then stall, connection open

    upstream = env.upstream(handler)
    client = env.client(upstream)
    client.request(target="/stall")
    try:
        data, closed = client.read_raw(timeout=WAIT)
    finally:
        release.set()
    assert closed and data.startswith(b"HTTP/1.1 200 ")


def test_plain_http_upstream_stalling_mid_body_is_cut_after_the_io_timeout(env, short_io_timeout):
    # The same stall on a plain TCP upstream (no route matches 127.0.0.1): SO_RCVTIMEO works there.
    listener = socket.create_server(("127.0.0.1", 0))
    release = threading.Event()
    received = bytearray()

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(WAIT)
            while b"\r\n\r\n" not in received:
                received.extend(conn.recv(65536))
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
            release.wait(WAIT * 2)

    threading.Thread(target=serve, daemon=True).start()
    port = listener.getsockname()[1]
    try:
        with socket.create_connection(env.address, timeout=WAIT) as sock:
            sock.sendall(
                f"GET http://127.0.0.1:{port}/stall HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Proxy-Authorization: Basic YXV0aHNvbWU6cHc=\r\n\r\n".encode()
            )
            data = b""
            while chunk := sock.recv(65536):  # a socket.timeout here would mean the proxy never cut it
                data += chunk
        assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"0123456789")
        assert received.startswith(b"GET /stall HTTP/1.1\r\n")
        assert b"proxy-authorization" not in received.lower()
    finally:
        release.set()
        listener.close()


# -- more framing corners ----------------------------------------------------------------------------------------


def test_pipelined_requests_in_one_write_are_answered_in_order(env):
    upstream = env.upstream(answering(lambda head, body: ok(head.split(b" ")[1] + b":" + body)))
    client = env.client(upstream)
    host = client.authority
    client.send(
        f"GET /a HTTP/1.1\r\nHost: {host}\r\n\r\n"
        f"POST /b HTTP/1.1\r\nHost: {host}\r\nContent-Length: 4\r\n\r\nbody"
        f"POST /c HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n"
        f"GET /d HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    )
    bodies = [client.response(method)[2] for method in ("GET", "POST", "POST", "GET")]
    assert bodies == [b"/a:", b"/b:body", b"/c:xy", b"/d:"]
    requests, leftover = parse_requests(upstream.received)
    assert [(m, t, b) for m, t, _, b in requests] == [
        (b"GET", b"/a", b""),
        (b"POST", b"/b", b"body"),
        (b"POST", b"/c", b"xy"),
        (b"GET", b"/d", b""),
    ]
    assert not leftover and len(upstream.conns) == 1


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_reflected_credential_is_scrubbed_without_breaking_the_framing(env, chunked):
    def answer(head, body):
        reflected = b"echo: " + head.split(b"Bearer ", 1)[1].split(b"\r\n", 1)[0] + b" end"
        if not chunked:
            return ok(reflected)
        middle = len(reflected) // 2  # the key split across two chunks
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (
            middle,
            reflected[:middle],
            len(reflected) - middle,
            reflected[middle:],
        )

    upstream = env.upstream(answering(answer))
    client = env.client(upstream)
    for _ in range(2):  # the connection stays in step afterwards
        client.request(target="/reflect")
        status, _, body, _ = client.response()
        assert status == 200 and KEY.encode() not in body
        assert body.startswith(b"echo: [authsome-redacted]") and body.endswith(b" end")
        assert len(body) == len(b"echo: ") + len(KEY) + len(b" end")


def test_compressed_eof_delimited_response_is_framed_as_the_client_is_told(env):
    import gzip

    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n" + gzip.compress(b"plain text body"))

    upstream = env.upstream(handler)
    client = env.client(upstream)
    client.request(target="/gz")
    status, headers, body, _ = client.response()
    assert (status, body) == (200, b"plain text body")


def test_client_is_told_when_the_connection_will_close_after_an_http10_response(env):
    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")

    upstream = env.upstream(handler)
    client = env.client(upstream)
    client.request(target="/old")
    status, headers, body, _ = client.response()
    assert (status, body) == (200, b"ok")
    closes = client.closed_by_proxy()
    assert not closes or headers.get(b"connection", b"").lower() == b"close"


def test_post_on_a_stale_kept_alive_upstream_is_a_502_and_never_sent_twice(env):
    finished = threading.Event()

    def handler(conn):
        conn.read_request()
        conn.send(ok(b"first"))  # keep-alive announced, then the upstream goes away (an idle close)
        conn.tls.close()
        finished.set()

    upstream = env.upstream(handler)
    client = env.client(upstream)
    client.request(target="/first")
    assert client.response()[2] == b"first"
    assert finished.wait(WAIT)
    time.sleep(0.1)  # let the upstream's close reach the proxy's socket
    client.request("POST", "/pay", "Content-Length: 6\r\n", b"amount")
    data, _ = client.read_raw()
    # A request that is not idempotent may have been acted on: it is not sent again by itself.
    assert data.startswith(b"HTTP/1.1 502 ")
    assert upstream.received.count(b"POST /pay ") <= 1
    assert len(upstream.conns) == 1


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_large_random_response_body_arrives_intact(env, chunked):
    import hashlib
    import os

    payload = os.urandom(8 * 1024 * 1024)

    def handler(conn):
        while conn.read_request() is not None:
            if not chunked:
                conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(payload))
                conn.send(payload)
                continue
            conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for i in range(0, len(payload), 100_000):
                piece = payload[i : i + 100_000]
                conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            conn.send(b"0\r\n\r\n")

    upstream = env.upstream(handler)
    client = env.client(upstream)
    for _ in range(2):
        client.request(target="/big")
        status, _, body, _ = client.response()
        assert status == 200 and hashlib.sha256(body).digest() == hashlib.sha256(payload).digest()


def test_request_head_far_over_64_kib_is_a_431_and_reaches_no_upstream(env):
    upstream = env.upstream(answering(lambda h, b: ok()))
    client = env.client(upstream)
    client.request(target="/big", headers="".join(f"X-Filler-{i}: {'f' * 1000}\r\n" for i in range(200)))
    data, closed = client.read_raw()
    assert data.startswith(b"HTTP/1.1 431 ") and closed
    assert upstream.received == b""


def test_request_head_just_over_64_kib_is_refused(env):
    upstream = env.upstream(answering(lambda h, b: ok()))
    client = env.client(upstream)
    client.request(target="/big", headers=f"X-Filler: {'f' * (64 * 1024 + 4096)}\r\n")
    try:
        status = client.response()[0]
    except h11.RemoteProtocolError:
        status = None
    assert status in (None, 431)
    assert upstream.received == b""
