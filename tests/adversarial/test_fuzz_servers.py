"""Raw bytes to the local servers: the browser form, the OAuth callback listener and the proxy.

Hypothesis builds hostile requests from parts (malformed request lines, oversized headers,
conflicting Content-Length / Transfer-Encoding, absolute-form URIs, IPv6 and IDN hosts, junk
bytes). Each gets an HTTP error or a closed connection, never a traceback or a 5xx from a crash,
never a success; and after each one the server still serves a well-formed client.
"""

from __future__ import annotations

import base64
import os
import re
import socket
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authsome.flows.callback import LoopbackCallback
from authsome.proxy.routes import Route
from authsome.proxy.runner import ProxyThread
from authsome.proxy.server import ProxyServer
from tests.adversarial import leakhook

EXAMPLES = int(os.environ.get("AUTHSOME_FUZZ_SERVER", "150"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
PROXY_USER, PROXY_PASSWORD = "authsome", "fuzz-" + "p" * 20


def exchange(port: int, data: bytes, timeout: float = 15) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer and close before reading an oversized request
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
                if len(out) > 1 << 20:
                    break
        except OSError:
            pass
        return out


REFUSALS = (*range(400, 500), 501, 505)  # a clean "no"; 500 would mean a crash


def status_of(response: bytes) -> int | None:
    if not response:
        return None
    assert response.startswith(b"HTTP/1."), response[:100]
    return int(response.split(b" ", 2)[1])


HOSTS = st.sampled_from(
    [
        "{self}",
        "127.0.0.1",
        "localhost",
        "[::1]",
        "[::1]:{port}",
        "evil.example",
        "127.0.0.1.nip.io",
        "xn--80ak6aa92e.com",
        "аpple.com",
        "münchen.de",
        "{self}.",
        "{self}:",
        "",
        " {self}",
        "{self}\tx",
        "a" * 300,
        "api.openai.com",
        "API.OPENAI.COM.",
        "api.openai.com:443",
        "xn--pi-openai-1c.com",
    ]
)
METHODS = st.sampled_from(["GET", "POST", "PUT", "CONNECT", "OPTIONS", "TRACE", "get", "G ET", "", "\x00", "BREW"])
VERSIONS = st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1 extra", "", "HTTP/1", "http/1.1"])
TARGETS = st.sampled_from(
    [
        "{path}",
        "/",
        "*",
        "http://{self}{path}",
        "http://evil.example{path}",
        "https://[::1]:{port}/",
        "http://xn--80ak6aa92e.com/",
        "//{self}{path}",
        "{path}?a=%00%ff",
        "{path}/../..",
        "/" + "x" * 70000,
        "api.openai.com:443",
        "127.0.0.1:9",
        "[::1]:9",
        "http://api.openai.com/v1/models",
    ]
)


@st.composite
def raw_requests(draw):
    method, target, version = draw(METHODS), draw(TARGETS), draw(VERSIONS)
    lines = [f"{method} {target} {version}".rstrip()]
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["host", "host", "origin", "cl", "te", "big", "junk", "auth", "many"]))
        if kind == "host":
            lines.append("Host: " + draw(HOSTS))
        elif kind == "origin":
            lines.append("Origin: " + draw(st.sampled_from(["http://{self}", "null", "http://evil.example", ""])))
        elif kind == "cl":
            lines.append(
                "Content-Length: " + draw(st.sampled_from(["0", "5", "-1", "99999999999", "1, 2", "abc", "+3"]))
            )
        elif kind == "te":
            lines.append("Transfer-Encoding: " + draw(st.sampled_from(["chunked", "chunked, identity", "gzip", "x"])))
        elif kind == "big":
            lines.append("X-Big: " + "b" * draw(st.sampled_from([8000, 70000, 200000])))
        elif kind == "auth":
            lines.append("Proxy-Authorization: {auth}")
        elif kind == "many":
            lines.extend(f"X-{i}: {i}" for i in range(draw(st.sampled_from([50, 200]))))
        else:
            lines.append(draw(st.text(max_size=30)).replace("\r", "").replace("\n", ""))
    ending = draw(st.sampled_from(["\r\n\r\n", "\n\n", "\r\n", "", "\r\n\r\n\r\n"]))
    body = draw(st.sampled_from([b"", b"api_key=x", b"5\r\nhello\r\n0\r\n\r\n", b"zz\r\n", b"\x00\xff" * 10]))
    junk = draw(st.binary(max_size=64)) if draw(st.integers(0, 9)) == 0 else b""
    return "\r\n".join(lines) + ending, body, junk


def render(parts, **values) -> bytes:
    head, body, junk = parts
    for name, value in values.items():
        head = head.replace("{" + name + "}", value)
    return junk + head.encode("utf-8", "surrogateescape") + body


# ---- browser form ------------------------------------------------------------------------
@pytest.fixture
def form(form_run_factory):
    # Hypothesis reuses a function-scoped fixture across the examples of one test: one form for all.
    return form_run_factory(timeout=600)


@SETTINGS
@given(parts=raw_requests())
def test_form_server_survives_raw_bytes(form, parts):
    run = form
    data = render(parts, self=run.host, port=str(run.port), path=run.path, auth="x")
    response = exchange(run.port, data)
    leakhook.SCANNER.record("form-response", "fuzzed form request", response)
    status = status_of(response)
    assert status is None or status in REFUSALS or status == 200 and data.startswith(b"GET "), response[:200]
    assert b"Traceback" not in response
    assert run.running and run.result is None  # nothing was ever accepted
    assert run.get().status == 200  # and a well-formed client is still served


# ---- OAuth callback listener ---------------------------------------------------------------
@pytest.fixture
def callback():
    listener = LoopbackCallback(0)
    results: list = []

    def wait():
        try:
            results.append(listener.wait("expected-state-" + "s" * 20, 600))
        except Exception as exc:  # noqa: BLE001 - recorded for the test
            results.append(exc)

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    yield listener, results
    if thread.is_alive():
        exchange(
            listener.port, f"GET /callback?code=c&state=x HTTP/1.1\r\nHost: 127.0.0.1:{listener.port}\r\n\r\n".encode()
        )
        thread.join(10)


@settings(max_examples=max(20, EXAMPLES // 3), deadline=None, suppress_health_check=SETTINGS.suppress_health_check)
@given(parts=raw_requests())
def test_callback_listener_survives_raw_bytes(callback, parts):
    listener, results = callback
    # The callback path itself is one-shot by design; fuzz every other way in.
    data = render(parts, self=f"127.0.0.1:{listener.port}", port=str(listener.port), path="/favicon.ico", auth="x")
    response = exchange(listener.port, data)
    if response[:15].lower() == b"<!doctype html>":
        # An HTTP/0.9-style answer (no status line) to a request line without a version, or the
        # standard library's page for one it cannot parse: acceptable when it is a refusal.
        code = re.search(rb"Error code explanation: (\d{3})", response)
        assert code or b"Wrong address" in response or b"Not found" in response, response[:300]
        status = int(code.group(1)) if code else 400
    else:
        status = status_of(response)
    assert status is None or status in REFUSALS, response[:200]
    assert results == [], results  # nothing here completes (or aborts) the login
    ok = exchange(listener.port, f"GET /nothing HTTP/1.1\r\nHost: 127.0.0.1:{listener.port}\r\n\r\n".encode())
    assert status_of(ok) == 404


# ---- proxy -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def proxy():
    injected: list = []

    def credential():
        injected.append(1)
        return None

    route = Route("openai", "default", ["api.openai.com"], credential)
    thread = ProxyThread(ProxyServer([route], username=PROXY_USER, password=PROXY_PASSWORD))
    host, port = thread.start()[:2]
    yield port, injected
    thread.stop()


SAFE_AUTHED = (b"127.0.0.1:9", b"[::1]:9", b"api.openai.com", b"API.OPENAI.COM")


@SETTINGS
@given(parts=raw_requests(), authed=st.booleans())
def test_proxy_survives_raw_bytes(proxy, parts, authed):
    port, injected = proxy
    token = base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode()
    first_line = render(parts, self="api.openai.com", port="443", path="/v1/models", auth="").split(b"\n", 1)[0]
    # With the run's credentials a request may reach its target: only loopback or the provider
    # host (refused in plain HTTP, TLS-intercepted behind CONNECT), never the network.
    authed = authed and any(h in first_line for h in SAFE_AUTHED)
    auth = f"Basic {token}" if authed else "Basic " + base64.b64encode(b"authsome:wrong").decode()
    data = render(parts, self="api.openai.com", port="443", path="/v1/models", auth=auth)
    authed = authed and b"Proxy-Authorization: " + auth.encode() in data
    response = exchange(port, data)
    status = status_of(response)
    assert status is None or status in REFUSALS or status in (200, 502, 504), response[:200]
    assert b"Traceback" not in response
    if status == 200:
        # Only an authenticated CONNECT may be answered 200 (the tunnel or TLS interception starts).
        assert authed and first_line.upper().startswith(b"CONNECT"), data[:200]
    if not authed:
        assert status in (None, 400, 407, 413, 414, 431, 405, 501, 505), response[:200]
    # Plain bytes never earned a credential lookup: injection needs a TLS client behind CONNECT.
    assert injected == []
    alive = exchange(
        port,
        f"CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\nProxy-Authorization: Basic {token}\r\n\r\n".encode(),
    )
    assert status_of(alive) == 502
