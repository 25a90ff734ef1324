"""The proxy's front door: authentication and hostile input, on a real loopback socket."""

from __future__ import annotations

import base64
import socket

import pytest

from authsome.proxy.routes import Route
from authsome.proxy.runner import ProxyThread
from authsome.proxy.server import ProxyServer


@pytest.fixture
def proxy():
    route = Route("openai", "default", ["api.openai.com"], lambda: None)
    thread = ProxyThread(ProxyServer([route], username="authsome", password="s3cret-pw"))
    host, port = thread.start()[:2]
    yield host, port
    thread.stop()


def exchange(address, data: bytes) -> bytes:
    with socket.create_connection(address, timeout=10) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the proxy may already have answered and closed (oversized request)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except OSError:
            pass  # the proxy may close before reading all of an oversized request
        return out


def connect_head(auth: str | None, target: str = "127.0.0.1:9") -> bytes:
    head = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
    if auth is not None:
        head += f"Proxy-Authorization: Basic {base64.b64encode(auth.encode()).decode()}\r\n"
    return (head + "\r\n").encode()


@pytest.mark.parametrize("auth", [None, "authsome:wrong", "authsome:s3cret-pw-longer", "other:s3cret-pw"])
def test_without_the_run_credentials_the_answer_is_407(proxy, auth):
    response = exchange(proxy, connect_head(auth))
    assert response.startswith(b"HTTP/1.1 407 ")
    assert b'proxy-authenticate: Basic realm="authsome"' in response.lower().replace(b"basic", b"Basic")


def test_bearer_or_garbage_scheme_is_407(proxy):
    raw = b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nProxy-Authorization: Bearer x\r\n\r\n"
    assert exchange(proxy, raw).startswith(b"HTTP/1.1 407 ")
    raw = b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nProxy-Authorization: Basic !!!\r\n\r\n"
    assert exchange(proxy, raw).startswith(b"HTTP/1.1 407 ")


def test_with_credentials_an_unreachable_target_is_502_not_a_crash(proxy):
    # Port 9 (discard) on loopback: nothing listens there in the test environment.
    response = exchange(proxy, connect_head("authsome:s3cret-pw"))
    assert response.startswith(b"HTTP/1.1 502 ")
    assert b"Traceback" not in response


@pytest.mark.parametrize(
    "raw",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 100,  # TLS straight at the proxy
        b"GET / HTTP/1.1\r\n" + b"X-Big: " + b"a" * 200_000 + b"\r\n\r\n",  # oversized head
        b"NONSENSE\r\n\r\n",
        b"",
    ],
)
def test_bad_input_gets_an_error_or_a_close_and_the_proxy_stays_up(proxy, raw):
    response = exchange(proxy, raw)
    assert response == b"" or response.startswith(b"HTTP/1.1 4")
    assert b"Traceback" not in response
    assert exchange(proxy, connect_head(None)).startswith(b"HTTP/1.1 407 ")


def test_plain_http_to_a_provider_host_is_refused(proxy):
    token = base64.b64encode(b"authsome:s3cret-pw").decode()
    raw = (
        "GET http://api.openai.com/v1/models HTTP/1.1\r\nHost: api.openai.com\r\n"
        f"Proxy-Authorization: Basic {token}\r\n\r\n"
    ).encode()
    response = exchange(proxy, raw)
    assert response.startswith(b"HTTP/1.1 403 ")


def test_serves_on_a_handed_unix_socket(tmp_path):
    path = str(tmp_path / "proxy.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen()
    thread = ProxyThread(ProxyServer([], username="authsome", password="pw"), listener)
    thread.start()
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(path)
            s.sendall(connect_head(None))
            assert s.recv(4096).startswith(b"HTTP/1.1 407 ")
    finally:
        thread.stop()


def test_a_trickled_request_head_is_cut_off(proxy, monkeypatch):
    import time

    from authsome.proxy import wire

    monkeypatch.setattr(wire, "HEAD_TIMEOUT", 0.5)
    with socket.create_connection(proxy, timeout=10) as s:
        s.settimeout(0.2)
        closed = False
        for byte in b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200:
            try:
                s.sendall(bytes([byte]))
                if s.recv(4096) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except OSError:
                closed = True
                break
            time.sleep(0.05)
        assert closed


def test_egress_hook_can_refuse_unmatched_targets():
    class NoEgress(ProxyServer):
        def unmatched_address(self, host, port):
            return None

    thread = ProxyThread(NoEgress([], username="authsome", password="pw"))
    address = thread.start()[:2]
    try:
        assert exchange(address, connect_head("authsome:pw", "example.test:443")).startswith(b"HTTP/1.1 403 ")
        token = base64.b64encode(b"authsome:pw").decode()
        raw = f"GET http://example.test/ HTTP/1.1\r\nHost: example.test\r\nProxy-Authorization: Basic {token}\r\n\r\n"
        assert exchange(address, raw.encode()).startswith(b"HTTP/1.1 403 ")
    finally:
        thread.stop()
