"""The isolated proxy refuses host services (403) and, with --egress providers, every unmatched host."""

from __future__ import annotations

import base64
import socket
import threading

import pytest

from authsome.proxy.runner import ProxyThread
from authsome.sandbox.proxy_policy import IsolatedProxyServer

USER, PASSWORD = "authsome", "test-password"
AUTH = b"Proxy-Authorization: Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()) + b"\r\n"


@pytest.fixture
def host_service():
    """A loopback listener standing for a host service; counts connections."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    seen = []

    def accept():
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            seen.append(1)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret")
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    yield sock.getsockname()[1], seen
    sock.close()


def start_proxy(egress: str) -> tuple[ProxyThread, int]:
    server = IsolatedProxyServer([], username=USER, password=PASSWORD, egress=egress)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    proxy = ProxyThread(server, listener)
    address = proxy.start()
    return proxy, address[1]


def exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        return data


@pytest.mark.parametrize("egress", ["all", "providers"])
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "0.0.0.0", "127.0.0.2"])
def test_connect_to_a_host_service_is_refused(host_service, egress, host):
    port, seen = host_service
    proxy, proxy_port = start_proxy(egress)
    try:
        target = f"{host}:{port}".encode()
        reply = exchange(proxy_port, b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (target, target, AUTH))
    finally:
        proxy.stop()
    assert reply.startswith(b"HTTP/1.1 403"), reply[:80]
    assert b"secret" not in reply
    assert seen == []


def test_absolute_form_http_to_a_host_service_is_refused(host_service):
    port, seen = host_service
    proxy, proxy_port = start_proxy("all")
    try:
        url = f"http://localhost:{port}/".encode()
        reply = exchange(proxy_port, b"GET %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n" % (url, AUTH))
    finally:
        proxy.stop()
    assert reply.startswith(b"HTTP/1.1 403"), reply[:80]
    assert seen == []


def test_the_unpatched_proxy_would_have_reached_it(host_service):
    # Control: the same request through the ordinary proxy reaches the service, so the 403s above
    # are the policy's doing.
    from authsome.proxy.server import ProxyServer

    port, seen = host_service
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    proxy = ProxyThread(ProxyServer([], username=USER, password=PASSWORD), listener)
    proxy_port = proxy.start()[1]
    try:
        target = f"127.0.0.1:{port}".encode()
        reply = exchange(proxy_port, b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (target, target, AUTH))
    finally:
        proxy.stop()
    assert reply.startswith(b"HTTP/1.1 200")
    assert seen == [1]


def test_without_credentials_it_is_407(host_service):
    port, _ = host_service
    proxy, proxy_port = start_proxy("all")
    try:
        reply = exchange(proxy_port, b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n\r\n" % port)
    finally:
        proxy.stop()
    assert reply.startswith(b"HTTP/1.1 407")
