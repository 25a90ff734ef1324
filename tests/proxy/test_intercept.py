"""The intercepting path in-process: a route for ``localhost``, a real TLS upstream, real TLS clients."""

from __future__ import annotations

import pytest

from authsome.proxy.routes import Route
from authsome.proxy.runner import ProxyThread
from authsome.proxy.server import ProxyServer

from .tls_helpers import ScriptedUpstream, bearer_injection, connect_through, read_head, write_test_pki

KEY = "sk-unit-0123456789abcdefghij"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def injection():
    return bearer_injection(KEY)


@pytest.fixture
def setup(tmp_path):
    ca, cert, key = write_test_pki(tmp_path)
    events: list[dict] = []
    server = ProxyServer(
        [Route("unit", "default", ["localhost", "127.0.0.1"], injection)],
        username="authsome",
        password="pw",
        audit=events.append,
        extra_ca_bundle=ca,
    )
    run_ca = tmp_path / "run-ca.pem"
    run_ca.write_bytes(server.ca.cert_pem)
    thread = ProxyThread(server)
    address = thread.start()[:2]
    upstreams = []

    def start_upstream(script):
        upstream = ScriptedUpstream(cert, key, script)
        upstreams.append(upstream)
        return upstream

    yield address, str(run_ca), start_upstream, events
    thread.stop()
    for upstream in upstreams:
        upstream.close()


def request(tls, port: int) -> bytes:
    tls.sendall(f"GET /x?q=1 HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n".encode())
    return read_head(tls)


def test_stale_kept_alive_upstream_is_retried_once_for_a_get(setup):
    address, run_ca, start_upstream, events = setup
    # Request 2 arrives on a connection the upstream then drops without answering.
    upstream = start_upstream(lambda n, head: None if n == 2 else OK)
    with connect_through(address, f"localhost:{upstream.port}", "pw", run_ca, "localhost") as tls:
        assert request(tls, upstream.port).startswith(b"HTTP/1.1 200")
        assert request(tls, upstream.port).startswith(b"HTTP/1.1 200")
    assert len(upstream.heads) == 3 and upstream.connections == 2
    assert all(f"Bearer {KEY}".encode() in head for head in upstream.heads)
    assert [e["path"] for e in events] == ["/x", "/x"]


def test_upstream_failing_before_any_response_is_a_502(setup):
    address, run_ca, start_upstream, events = setup
    upstream = start_upstream(lambda n, head: None)
    with connect_through(address, f"localhost:{upstream.port}", "pw", run_ca, "localhost") as tls:
        assert request(tls, upstream.port).startswith(b"HTTP/1.1 502")
    assert events == []


def test_unverifiable_upstream_is_a_502_naming_the_setting(tmp_path, setup):
    address, run_ca, start_upstream, events = setup
    other = tmp_path / "other"
    other.mkdir()
    _, cert, key = write_test_pki(other)
    upstream = ScriptedUpstream(cert, key, lambda n, head: OK)  # signed by a CA the proxy does not trust
    try:
        with connect_through(address, f"localhost:{upstream.port}", "pw", run_ca, "localhost") as tls:
            tls.sendall(f"GET / HTTP/1.1\r\nHost: localhost:{upstream.port}\r\n\r\n".encode())
            response = b""
            while chunk := tls.recv(65536):
                response += chunk
        assert response.startswith(b"HTTP/1.1 502")
        assert b"AUTHSOME_CA_BUNDLE" in response
        assert upstream.heads == []
    finally:
        upstream.close()


def test_ip_literal_route_is_injected_without_sni(setup):
    address, run_ca, start_upstream, events = setup
    upstream = start_upstream(lambda n, head: OK)
    # Python sends no SNI for an IP address, as RFC 6066 requires.
    with connect_through(address, f"127.0.0.1:{upstream.port}", "pw", run_ca, "127.0.0.1") as tls:
        tls.sendall(f"GET /ip HTTP/1.1\r\nHost: 127.0.0.1:{upstream.port}\r\n\r\n".encode())
        assert read_head(tls).startswith(b"HTTP/1.1 200")
    assert f"Bearer {KEY}".encode() in upstream.heads[0]
    assert events[0]["host"] == "127.0.0.1"


def test_name_without_sni_gets_no_credential(setup):
    import socket
    import ssl

    address, run_ca, start_upstream, events = setup
    upstream = start_upstream(lambda n, head: OK)
    sock = socket.create_connection(address, timeout=10)
    token = "YXV0aHNvbWU6cHc="  # authsome:pw
    target = f"localhost:{upstream.port}"
    sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: Basic {token}\r\n\r\n".encode())
    assert read_head(sock).startswith(b"HTTP/1.1 200")
    # No SNI (server_hostname=None needs the host-name check off; the chain is still verified).
    ctx = ssl.create_default_context(cafile=run_ca)
    ctx.check_hostname = False
    with ctx.wrap_socket(sock, server_hostname=None) as tls:
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        assert read_head(tls).startswith(b"HTTP/1.1 200")
    assert b"authorization" not in upstream.heads[0].lower()
    assert events == []


def test_failed_credential_lookup_is_a_502_that_names_the_connection(tmp_path):
    from authsome.errors import TokenExpiredError

    ca, cert, key = write_test_pki(tmp_path)

    def expired():
        raise TokenExpiredError("The token of github (work) expired and could not be refreshed.")

    server = ProxyServer(
        [Route("github", "work", ["localhost"], expired)], username="authsome", password="pw", extra_ca_bundle=ca
    )
    run_ca = tmp_path / "run-ca.pem"
    run_ca.write_bytes(server.ca.cert_pem)
    thread = ProxyThread(server)
    address = thread.start()[:2]
    upstream = ScriptedUpstream(cert, key, lambda n, head: OK)
    try:
        with connect_through(address, f"localhost:{upstream.port}", "pw", str(run_ca), "localhost") as tls:
            tls.sendall(f"GET / HTTP/1.1\r\nHost: localhost:{upstream.port}\r\n\r\n".encode())
            response = b""
            while chunk := tls.recv(65536):
                response += chunk
        assert response.startswith(b"HTTP/1.1 502")
        assert b"github (work)" in response and b"expired" in response
        assert upstream.heads == []
    finally:
        thread.stop()
        upstream.close()
