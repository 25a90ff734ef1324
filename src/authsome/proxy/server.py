"""The asyncio forward proxy: authentication, CONNECT handling, dispatch.

- Every request must carry the run's proxy credentials (``407`` otherwise).
- ``CONNECT`` to a host no route matches: a blind TCP tunnel.
- ``CONNECT`` to a matched host: TLS terminated with a leaf of the run's CA,
  then requests relayed by ``HttpRelay`` with the credential injected.
- Plain ``http://`` requests: refused with 403 for a matched host (a
  credential never travels in clear, and the proxy does not pretend
  otherwise), relayed without any change for other hosts.

A bad client gets an error response or a closed connection, never a
traceback, and the server keeps serving everyone else.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import socket
import ssl
import threading
from collections.abc import Callable

import h11

from authsome.proxy import wire
from authsome.proxy.ca import RunCA
from authsome.proxy.relay import HttpRelay
from authsome.proxy.routes import Route, all_host_patterns, find_route
from authsome.proxy.scrub import Scrubber, injected_values, secret_patterns

logger = logging.getLogger("authsome.proxy")

_PROXY_AUTH_CHALLENGE = [(b"proxy-authenticate", b'Basic realm="authsome"')]


def _is_ip_literal(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def upstream_context(extra_ca_bundle: str | None = None) -> ssl.SSLContext:
    """Verified client TLS: the system trust store plus an optional extra bundle."""
    ctx = ssl.create_default_context()
    if extra_ca_bundle:
        ctx.load_verify_locations(cafile=extra_ca_bundle)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class ProxyServer:
    """One run's proxy. ``start`` binds it; ``close`` stops it."""

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
        self._upstream_ssl_lock = threading.Lock()
        self._expected_credentials = f"{username}:{password}".encode()
        self._audit = audit
        self._scrubbers: dict[int, tuple[object, Scrubber]] = {}
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0, sock: socket.socket | None = None):
        """Listen on ``host:port`` (port 0: ephemeral) or on a handed listening socket."""
        if sock is not None and sock.family == getattr(socket, "AF_UNIX", None):
            self._server = await asyncio.start_unix_server(self._on_client, sock=sock, limit=wire.READ_SIZE)
        elif sock is not None:
            self._server = await asyncio.start_server(self._on_client, sock=sock, limit=wire.READ_SIZE)
        else:
            self._server = await asyncio.start_server(self._on_client, host, port, limit=wire.READ_SIZE)
        return self._server.sockets[0].getsockname()

    @property
    def upstream_ssl(self) -> ssl.SSLContext:
        """Built on first use: loading the system trust store takes tens of milliseconds."""
        with self._upstream_ssl_lock:
            if self._upstream_ssl is None:
                self._upstream_ssl = upstream_context(self._extra_ca_bundle)
            return self._upstream_ssl

    async def upstream_ssl_async(self) -> ssl.SSLContext:
        if self._upstream_ssl is not None:
            return self._upstream_ssl
        return await asyncio.to_thread(lambda: self.upstream_ssl)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    # -- services for HttpRelay -------------------------------------------------
    async def injection_for(self, route: Route):
        cached = route.cached_injection()
        if cached is not None:
            return cached
        return await asyncio.to_thread(route.injection)

    def scrubber_for(self, injection) -> Scrubber:
        entry = self._scrubbers.get(id(injection))
        if entry is None or entry[0] is not injection:
            entry = (injection, Scrubber(secret_patterns(injected_values(injection))))
            # A small cache: an injection object lives for the route's cache period.
            recent = dict(list(self._scrubbers.items())[-15:])
            recent[id(injection)] = entry
            self._scrubbers = recent
        return entry[1]

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
            logger.warning("authsome proxy: audit callback failed")

    # -- connections --------------------------------------------------------------
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

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        try:
            await self._serve_client(reader, writer)
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # noqa: BLE001 - one bad connection must not take the proxy down
            # The type only: a message could quote a header value, and so a secret.
            logger.debug("authsome proxy: connection failed (%s)", type(exc).__name__)
        finally:
            self._connections.discard(task)
            await wire.close_writer(writer)

    async def _serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = wire.new_server_conn()
        try:
            request = await wire.next_event(conn, reader, wire.HEAD_TIMEOUT)
        except h11.RemoteProtocolError as exc:
            await wire.send_simple_response(conn, writer, exc.error_status_hint, "authsome proxy: bad request")
            return
        except (TimeoutError, wire.PeerClosed):
            return
        if not isinstance(request, h11.Request):
            return
        if not self.check_proxy_auth(wire.header_value(request.headers, b"proxy-authorization")):
            await wire.send_simple_response(
                conn, writer, 407, "authsome proxy: proxy authentication required", _PROXY_AUTH_CHALLENGE
            )
            return
        if request.method == b"CONNECT":
            await self._connect(conn, reader, writer, request)
        else:
            await self._plain_http(conn, reader, writer, request)

    async def _connect(self, conn, reader, writer, request: h11.Request) -> None:
        target = wire.split_host_port(request.target.decode("ascii", "replace"), 443)
        if target is None:
            await wire.send_simple_response(conn, writer, 400, "authsome proxy: bad CONNECT target")
            return
        host, port = wire.canonical_host(target[0]), target[1]
        route = find_route(self.routes, host)
        if route is None:
            await self._tunnel(conn, reader, writer, host, port)
        else:
            await self._intercept(conn, reader, writer, host, port, route)

    async def _established(self, conn, writer) -> bytes:
        """Answer 200 to CONNECT; return any bytes the client sent early."""
        await wire.send(conn, writer, h11.Response(status_code=200, headers=[], reason=b"Connection established"))
        early, _ = conn.trailing_data
        return early

    async def unmatched_address(self, host: str, port: int) -> str | None:
        """Where to connect for a target no route matches; None refuses it (403).

        The hook for an egress policy: a subclass may resolve ``host``, check
        the addresses and return the one to use. Matched hosts never get here.
        """
        return host

    def unmatched_refusal(self, host: str, port: int) -> str:
        return f"authsome proxy: connections to {host}:{port} are not allowed in this run"

    async def _tunnel(self, conn, reader, writer, host: str, port: int) -> None:
        address = await self.unmatched_address(host, port)
        if address is None:
            await wire.send_simple_response(conn, writer, 403, self.unmatched_refusal(host, port))
            return
        try:
            async with asyncio.timeout(wire.CONNECT_TIMEOUT):
                up_reader, up_writer = await asyncio.open_connection(address, port, limit=wire.READ_SIZE)
        except (OSError, TimeoutError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or "failed")
            await wire.send_simple_response(
                conn, writer, 502, f"authsome proxy: cannot connect to {host}:{port}: {reason}"
            )
            return
        try:
            early = await self._established(conn, writer)
            if early:
                up_writer.write(early)
            await wire.splice(reader, writer, up_reader, up_writer)
        finally:
            await wire.close_writer(up_writer)

    async def _intercept(self, conn, reader, writer, host: str, port: int, route: Route) -> None:
        server_ctx = self.ca.cached_context(host) or await asyncio.to_thread(self.ca.server_context, host)
        # The ClientHello must reach the TLS layer, not the plain stream buffer:
        # stop reading before answering 200 and let start_tls resume it.
        writer.transport.pause_reading()
        early = await self._established(conn, writer)
        if early:
            return  # a TLS ClientHello sent before our 200: not a client we can serve safely
        try:
            async with asyncio.timeout(wire.CONNECT_TIMEOUT):
                await writer.start_tls(server_ctx)
        except (OSError, TimeoutError, ssl.SSLError):
            return
        ssl_object = writer.get_extra_info("ssl_object")
        sni = getattr(ssl_object, "authsome_sni", None)
        if sni is None:
            # Clients send no SNI for an IP address (RFC 6066); for a name, a missing SNI is a mismatch.
            sni_ok = _is_ip_literal(host)
        else:
            sni_ok = wire.canonical_host(sni) == host
        relay = HttpRelay(
            self, reader, writer, wire.new_server_conn(), host, port, tls=True, route=route, sni_ok=sni_ok
        )
        await relay.serve()

    async def _plain_http(self, conn, reader, writer, request: h11.Request) -> None:
        """Plain http:// requests, one upstream connection per request (rare, so kept simple)."""
        from urllib.parse import urlsplit

        while True:
            parts = urlsplit(request.target.decode("ascii", "replace"))
            authority = wire.split_host_port(parts.netloc, 80) if parts.scheme == "http" else None
            if authority is None:
                await wire.send_simple_response(conn, writer, 400, "authsome proxy: expected an absolute http:// URL")
                return
            host, port = wire.canonical_host(authority[0]), authority[1]
            if find_route(self.routes, host) is not None:
                message = (
                    f"authsome proxy: {host} is a provider host; credentials are only sent over "
                    "https://. Use an https:// URL."
                )
                await wire.send_simple_response(conn, writer, 403, message)
                return
            address = await self.unmatched_address(host, port)
            if address is None:
                await wire.send_simple_response(conn, writer, 403, self.unmatched_refusal(host, port))
                return
            relay = HttpRelay(self, reader, writer, conn, address, port, tls=False)
            try:
                keep_alive = await relay.handle_request(request)
            finally:
                await relay.close_upstream()
            if not keep_alive or conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()
            try:
                request = await wire.next_event(conn, reader, wire.HEAD_TIMEOUT)
            except (h11.RemoteProtocolError, TimeoutError, wire.PeerClosed):
                return
            if not isinstance(request, h11.Request):
                return
            if not self.check_proxy_auth(wire.header_value(request.headers, b"proxy-authorization")):
                await wire.send_simple_response(
                    conn, writer, 407, "authsome proxy: proxy authentication required", _PROXY_AUTH_CHALLENGE
                )
                return
