"""The forward proxy: authentication, CONNECT handling, dispatch.

- Every request must carry the run's proxy credentials (``407`` otherwise).
- ``CONNECT`` to a host no route matches: a blind TCP tunnel.
- ``CONNECT`` to a matched host: TLS terminated with a leaf of the run's CA,
  then requests relayed by ``HttpRelay`` with the credential injected.
- Plain ``http://`` requests: refused with 403 for a matched host (a
  credential never travels in clear, and the proxy does not pretend
  otherwise), relayed without any change for other hosts.

One thread per client connection, blocking sockets: a request then goes
through OpenSSL and llhttp with little Python in between, which measured
several times faster than asyncio's pure-Python TLS transport (see
bench/proxy/RESULTS.md). A bad client gets an error response or a closed
connection, never a traceback, and the server keeps serving everyone else.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable

import httptools

from authsome.proxy import wire
from authsome.proxy.ca import RunCA
from authsome.proxy.http1 import Head, RequestReader
from authsome.proxy.message import Prepared
from authsome.proxy.relay import HttpRelay
from authsome.proxy.routes import Route, all_host_patterns, find_route
from authsome.proxy.scrub import Scrubber, injected_values, secret_patterns
from authsome.proxy.splice import splice
from authsome.proxy.trust import upstream_context

_PROXY_AUTH_CHALLENGE = [(b"proxy-authenticate", b'Basic realm="authsome"')]
#: Connections served at once; more are closed at accept (a local process could open thousands).
MAX_CONNECTIONS = 512


def _shutdown(sock) -> None:
    """End both directions of ``sock``'s descriptor; a thread blocked on it wakes up.

    ``socket.socket.shutdown`` on purpose: ``SSLSocket.shutdown`` would also drop
    the TLS object under a thread that may be using it.
    """
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except (OSError, ValueError):
        pass


def _debug(message: str) -> None:
    """Diagnostics with AUTHSOME_DEBUG=1 (no logging module: it would cost the proxy memory for nothing)."""
    if os.environ.get("AUTHSOME_DEBUG") == "1":
        print(f"authsome proxy: {message}", file=sys.stderr)


def _is_ip_literal(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class ProxyServer:
    """One run's proxy. ``serve(listener)`` runs the accept loop; ``close`` stops it."""

    def __init__(
        self,
        routes: list[Route],
        *,
        username: str,
        password: str,
        audit: Callable[[dict], None] | None = None,
        extra_ca_bundle: str | None = None,
        ca: RunCA | None = None,
    ) -> None:
        self.routes = list(routes)
        self.ca = ca or RunCA(all_host_patterns(self.routes))
        self._extra_ca_bundle = extra_ca_bundle
        self._upstream_ssl: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        self._expected_credentials = f"{username}:{password}".encode()
        self._audit = audit
        self._prepared: dict[int, Prepared] = {}
        self._listener: socket.socket | None = None
        # Per client connection (keyed by its accepted socket): every socket it uses, so close() reaches them.
        self._clients: dict[socket.socket, list] = {}
        self._closing = False
        self._threads: set[threading.Thread] = set()

    # -- lifecycle ------------------------------------------------------------------
    def serve(self, listener: socket.socket) -> None:
        """Accept and serve connections until ``close``; runs in the calling thread."""
        self._listener = listener
        listener.settimeout(None)
        while not self._closing:
            try:
                sock, _ = listener.accept()
            except OSError:
                if self._closing:
                    return
                continue  # e.g. EMFILE, ECONNABORTED: keep serving
            with self._lock:
                if self._closing or len(self._clients) >= MAX_CONNECTIONS:
                    wire.close(sock)
                    continue
                self._clients[sock] = [sock]
            thread = threading.Thread(target=self._on_client, args=(sock,), name="authsome-proxy-conn", daemon=True)
            with self._lock:
                self._threads.add(thread)  # before start: the thread removes itself when it ends
            try:
                thread.start()
            except RuntimeError:  # cannot start a thread (resource limits)
                with self._lock:
                    self._threads.discard(thread)
                self._forget(sock)

    def close(self) -> None:
        """Stop accepting and end every connection (their threads then exit)."""
        with self._lock:
            self._closing = True
            sockets = [s for owned in self._clients.values() for s in owned]
        listener = self._listener
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in accept()
            except OSError:
                pass
        for sock in sockets:
            _shutdown(sock)

    def wait_closed(self, timeout: float) -> None:
        """After ``close``: wait (up to ``timeout`` in all) for the connection threads to end.

        A process that exits normally must not leave a thread inside OpenSSL
        while the interpreter and OpenSSL tear down (that can crash it).
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def adopt(self, owner, sock) -> None:
        """Count ``sock`` (a TLS layer, an upstream) as part of ``owner``'s connection."""
        with self._lock:
            owned = self._clients.get(owner)
            if owned is not None:
                owned.append(sock)
            closing = self._closing
        if closing:
            _shutdown(sock)

    def release(self, owner, sock) -> None:
        with self._lock:
            owned = self._clients.get(owner)
            if owned is not None and sock in owned:
                owned.remove(sock)

    def _forget(self, sock) -> None:
        with self._lock:
            self._clients.pop(sock, None)
        wire.close(sock)

    @property
    def upstream_ssl(self) -> ssl.SSLContext:
        """Built on first use: loading the system trust store takes tens of milliseconds."""
        with self._lock:
            if self._upstream_ssl is None:
                self._upstream_ssl = upstream_context(self._extra_ca_bundle)
            return self._upstream_ssl

    # -- services for HttpRelay -------------------------------------------------
    def prepared(self, injection) -> Prepared:
        """The wire form and scrubber of ``injection`` (cached: it lives for the route's cache period)."""
        entry = self._prepared.get(id(injection))
        if entry is None or entry.injection is not injection:
            entry = Prepared(injection, Scrubber(secret_patterns(injected_values(injection))))
            with self._lock:
                recent = dict(list(self._prepared.items())[-15:])
                recent[id(injection)] = entry
                self._prepared = recent
        return entry

    def scrubber_for(self, injection) -> Scrubber:
        return self.prepared(injection).scrubber

    def lookup_error(self, route: Route, exc: Exception) -> str:
        from authsome.errors import AuthsomeError

        detail = exc.message if isinstance(exc, AuthsomeError) else "unexpected error"
        return (
            f"authsome proxy: no credential for {route.provider_name} ({route.connection}): {detail}. "
            "Check it with `authsome list`."
        )

    def record(self, event: dict) -> None:
        if self._audit is None:
            return
        try:
            self._audit(event)
        except Exception:  # noqa: BLE001 - a failing audit sink must not break the relay
            _debug("audit callback failed")

    def check_proxy_auth(self, value: bytes | None) -> bool:
        """Constant-time check of a ``Proxy-Authorization: Basic ...`` value."""
        if not value:
            return False
        scheme, _, token = value.strip().partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            presented = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(presented, self._expected_credentials)

    # -- hooks for the isolated run's egress policy ----------------------------------
    def unmatched_address(self, host: str, port: int) -> str | None:
        """Where to connect for a target no route matches; None refuses it (403).

        A subclass may resolve ``host``, check the addresses and return the
        one to use. Matched hosts never get here.
        """
        return host

    def unmatched_refusal(self, host: str, port: int) -> str:
        return f"authsome proxy: connections to {host}:{port} are not allowed in this run"

    # -- connections --------------------------------------------------------------
    def _on_client(self, sock: socket.socket) -> None:
        try:
            wire.nodelay(sock)
            self._serve_client(sock)
        except Exception as exc:  # noqa: BLE001 - one bad connection must not take the proxy down
            # The type only: a message could quote a header value, and so a secret.
            _debug(f"connection failed ({type(exc).__name__})")
        finally:
            self._forget(sock)
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _serve_client(self, sock: socket.socket) -> None:
        reader = RequestReader(sock)
        try:
            request = wire.next_event(reader, wire.HEAD_TIMEOUT)
        except wire.HeadTooLarge:
            wire.send_simple_response(sock, 431, "authsome proxy: request head too large")
            return
        except httptools.HttpParserError:
            wire.send_simple_response(sock, 400, "authsome proxy: bad request")
            return
        except wire.PeerClosed:
            return
        if not isinstance(request, Head):
            return
        if request.method == b"CONNECT":
            # llhttp treats CONNECT as a protocol switch: whatever followed the head is tunnel data.
            self._connect(sock, request, reader.upgraded or b"")
            return
        if not self.check_proxy_auth(request.get(b"proxy-authorization")):
            wire.send_simple_response(sock, 407, "authsome proxy: proxy authentication required", _PROXY_AUTH_CHALLENGE)
            return
        self._plain_http(sock, reader, request)

    def _connect(self, sock, request: Head, early: bytes) -> None:
        if not self.check_proxy_auth(request.get(b"proxy-authorization")):
            wire.send_simple_response(sock, 407, "authsome proxy: proxy authentication required", _PROXY_AUTH_CHALLENGE)
            return
        target = wire.split_host_port(request.target.decode("ascii", "replace"), 443)
        if target is None:
            wire.send_simple_response(sock, 400, "authsome proxy: bad CONNECT target")
            return
        host, port = wire.canonical_host(target[0]), target[1]
        route = find_route(self.routes, host)
        if route is None:
            self._tunnel(sock, host, port, early)
        else:
            self._intercept(sock, host, port, route, early)

    def _tunnel(self, sock, host: str, port: int, early: bytes) -> None:
        address = self.unmatched_address(host, port)
        if address is None:
            wire.send_simple_response(sock, 403, self.unmatched_refusal(host, port))
            return
        try:
            upstream = wire.connect(address, port)
        except OSError as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or "failed")
            wire.send_simple_response(sock, 502, f"authsome proxy: cannot connect to {host}:{port}: {reason}")
            return
        self.adopt(sock, upstream)
        try:
            wire.send(sock, b"HTTP/1.1 200 Connection established\r\n\r\n")
            splice(sock, upstream, to_b=early)
        except wire.PeerClosed:
            pass
        finally:
            self.release(sock, upstream)
            wire.close(upstream)

    def _intercept(self, sock, host: str, port: int, route: Route, early: bytes) -> None:
        if early:
            return  # a TLS ClientHello sent before our 200: not a client we can serve safely
        try:
            server_ctx = self.ca.server_context(host)
            wire.send(sock, b"HTTP/1.1 200 Connection established\r\n\r\n")
            sock.settimeout(wire.CONNECT_TIMEOUT)
            # The accepted socket's descriptor moves into the TLS socket: track that one instead.
            tls = server_ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            self.adopt(sock, tls)
            tls.do_handshake()
        except (OSError, ssl.SSLError, wire.PeerClosed):
            return
        try:
            sni = getattr(tls, "authsome_sni", None)
            if sni is None:
                # Clients send no SNI for an IP address (RFC 6066); for a name, a missing SNI is a mismatch.
                sni_ok = _is_ip_literal(host)
            else:
                sni_ok = wire.canonical_host(sni) == host
            HttpRelay(self, tls, host, port, tls=True, route=route, sni_ok=sni_ok, owner=sock).serve()
        finally:
            wire.close(tls)

    def _plain_http(self, sock, reader: RequestReader, request: Head) -> None:
        """Plain http:// requests, one upstream connection per request (rare, so kept simple)."""
        from urllib.parse import urlsplit

        while True:
            parts = urlsplit(request.target.decode("ascii", "replace"))
            authority = wire.split_host_port(parts.netloc, 80) if parts.scheme == "http" else None
            if authority is None:
                wire.send_simple_response(sock, 400, "authsome proxy: expected an absolute http:// URL")
                return
            host, port = wire.canonical_host(authority[0]), authority[1]
            if find_route(self.routes, host) is not None:
                message = (
                    f"authsome proxy: {host} is a provider host; credentials are only sent over "
                    "https://. Use an https:// URL."
                )
                wire.send_simple_response(sock, 403, message)
                return
            address = self.unmatched_address(host, port)
            if address is None:
                wire.send_simple_response(sock, 403, self.unmatched_refusal(host, port))
                return
            relay = HttpRelay(self, sock, address, port, tls=False, reader=reader, owner=sock)
            try:
                keep_alive = relay.handle_request(request)
            finally:
                relay.close_upstream()
            if not keep_alive:
                return
            try:
                request = wire.next_event(reader, wire.HEAD_TIMEOUT)
            except (httptools.HttpParserError, wire.HeadTooLarge, wire.PeerClosed):
                return
            if not isinstance(request, Head):
                return
            if not self.check_proxy_auth(request.get(b"proxy-authorization")):
                wire.send_simple_response(
                    sock, 407, "authsome proxy: proxy authentication required", _PROXY_AUTH_CHALLENGE
                )
                return
