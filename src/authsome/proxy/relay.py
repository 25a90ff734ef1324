"""Relaying HTTP/1.1 requests to one upstream, injecting a credential where allowed.

Used for intercepted TLS connections (after the proxy terminated the
client's TLS) and for plain ``http://`` requests to hosts no route matches.
Bodies stream both ways chunk by chunk; nothing is buffered whole. A
credential is injected only when the connection has a route, the TLS SNI and
the CONNECT target agree, and the request's Host names that same host.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote_plus, urlsplit

import h11

from authsome.proxy import wire
from authsome.proxy.wire import IO_TIMEOUT, PeerClosed

if TYPE_CHECKING:
    from authsome.proxy.routes import Route
    from authsome.proxy.server import ProxyServer


class UpstreamError(Exception):
    """The upstream could not be reached or verified; the message is safe to show."""


def with_query(target: bytes, params: list[tuple[str, str]]) -> bytes:
    """``target`` with each of ``params`` set (same-named parameters removed first)."""
    if not params:
        return target
    path, _, query = target.decode("ascii", "replace").partition("?")
    names = {name for name, _ in params}
    kept = [part for part in query.split("&") if part and unquote_plus(part.split("=", 1)[0]) not in names]
    kept += [f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in params]
    return (path + "?" + "&".join(kept)).encode("ascii")


class HttpRelay:
    """One client connection's requests, relayed to ``host:port``."""

    def __init__(
        self,
        server: ProxyServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        conn: h11.Connection,
        host: str,
        port: int,
        *,
        tls: bool,
        route: Route | None = None,
        sni_ok: bool = False,
    ) -> None:
        self.server = server
        self.reader, self.writer, self.conn = reader, writer, conn
        self.host, self.port, self.tls = host, port, tls
        self.route = route if sni_ok else None
        self.up_reader: asyncio.StreamReader | None = None
        self.up_writer: asyncio.StreamWriter | None = None
        self.up_conn: h11.Connection | None = None

    async def serve(self) -> None:
        """Handle requests on the (already TLS-terminated) client connection until it ends."""
        try:
            while True:
                try:
                    event = await wire.next_event(self.conn, self.reader, wire.HEAD_TIMEOUT)
                except h11.RemoteProtocolError as exc:
                    status = exc.error_status_hint
                    await wire.send_simple_response(self.conn, self.writer, status, "authsome proxy: bad request")
                    return
                except (TimeoutError, PeerClosed):
                    return
                if not isinstance(event, h11.Request):
                    return
                if not await self.handle_request(event):
                    return
                if self.conn.our_state is not h11.DONE or self.conn.their_state is not h11.DONE:
                    return
                self.conn.start_next_cycle()
        finally:
            await self.close_upstream()

    async def close_upstream(self) -> None:
        await wire.close_writer(self.up_writer)
        self.up_reader = self.up_writer = self.up_conn = None

    # -- one request -----------------------------------------------------------
    def _host_header_ok(self, request: h11.Request) -> bool:
        value = wire.header_value(request.headers, b"host")
        if value is None:
            return False
        parsed = wire.split_host_port(value.decode("ascii", "replace"), 443 if self.tls else 80)
        return parsed is not None and (wire.canonical_host(parsed[0]), parsed[1]) == (self.host, self.port)

    def _origin_target(self, request: h11.Request) -> bytes | None:
        target = request.target
        if target.startswith(b"/") or target == b"*":
            return target
        parts = urlsplit(target.decode("ascii", "replace"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return None
        if self.tls:  # absolute-form inside the tunnel must name the tunnel's host
            authority = wire.split_host_port(parts.netloc, 443)
            if authority is None or (wire.canonical_host(authority[0]), authority[1]) != (self.host, self.port):
                return None
        origin = parts.path or "/"
        if parts.query:
            origin += "?" + parts.query
        return origin.encode("ascii", "replace")

    async def handle_request(self, request: h11.Request) -> bool:
        """Relay one request and its response; False when the connection must close."""
        target = self._origin_target(request)
        if target is None:
            await wire.send_simple_response(self.conn, self.writer, 400, "authsome proxy: bad request target")
            return False
        if sum(1 for name, _ in request.headers if name == b"host") > 1:
            # Two Host headers could name two hosts to two parsers: refuse rather than guess.
            await wire.send_simple_response(self.conn, self.writer, 400, "authsome proxy: more than one Host header")
            return False
        route = self.route if self._host_header_ok(request) else None
        injection = None
        if route is not None:
            try:
                injection = await self.server.injection_for(route)
            except Exception as exc:  # noqa: BLE001 - the lookup's failure is reported, never raised
                await wire.send_simple_response(self.conn, self.writer, 502, self.server.lookup_error(route, exc))
                return False
        headers = self._upstream_headers(request, injection)
        if injection is not None:
            target = with_query(target, injection.query)
        try:
            await self._ensure_upstream()
        except UpstreamError as exc:
            await wire.send_simple_response(self.conn, self.writer, 502, str(exc))
            return False
        upstream_request = h11.Request(method=request.method, target=target, headers=headers)
        try:
            await wire.send(self.up_conn, self.up_writer, upstream_request)
        except (PeerClosed, h11.LocalProtocolError):
            await wire.send_simple_response(self.conn, self.writer, 502, "authsome proxy: upstream closed")
            return False
        return await self._exchange(request, route, injection)

    def _upstream_headers(self, request: h11.Request, injection) -> list[tuple[bytes, bytes]]:
        dropped = set(wire.HOP_BY_HOP)
        if injection is not None:
            dropped.update(name.lower().encode("latin-1") for name in injection.replaces)
            dropped.update(name.lower().encode("latin-1") for name, _ in injection.headers)
            dropped.add(b"accept-encoding")  # scrubbing needs the body in plain text
            dropped.add(b"sec-websocket-extensions")  # and WebSocket frames uncompressed
        headers = [(k, v) for k, v in request.headers.raw_items() if k.lower() not in dropped]
        if injection is not None:
            headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in injection.headers]
            headers.append((b"Accept-Encoding", b"identity"))
        return headers

    async def _ensure_upstream(self) -> None:
        if self.up_reader is not None and not self.up_reader.at_eof():
            return
        await self.close_upstream()
        try:
            async with asyncio.timeout(wire.CONNECT_TIMEOUT):
                if self.tls:
                    self.up_reader, self.up_writer = await asyncio.open_connection(
                        self.host, self.port, ssl=self.server.upstream_ssl, server_hostname=self.host
                    )
                else:
                    self.up_reader, self.up_writer = await asyncio.open_connection(self.host, self.port)
        except ssl.SSLCertVerificationError as exc:
            raise UpstreamError(
                f"authsome proxy: the TLS certificate of {self.host} could not be verified "
                f"({exc.verify_message}). Behind a TLS-inspecting proxy, set AUTHSOME_CA_BUNDLE "
                "to its CA certificate file."
            ) from None
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            reason = type(exc).__name__ if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
            raise UpstreamError(f"authsome proxy: cannot connect to {self.host}:{self.port}: {reason}") from None
        self.up_conn = wire.new_client_conn()

    async def _exchange(self, request: h11.Request, route, injection) -> bool:
        state = {"response_started": False}
        sending = asyncio.ensure_future(self._pump_request_body())
        receiving = asyncio.ensure_future(self._pump_response(request, route, injection, state))
        pending = {sending, receiving}
        try:
            while receiving in pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if sending in done and sending.exception() is not None:
                    receiving.cancel()
                    await asyncio.gather(receiving, return_exceptions=True)
                    return False
        except asyncio.CancelledError:
            sending.cancel()
            receiving.cancel()
            raise
        if receiving.exception() is not None:
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
            if not state["response_started"]:
                message = "authsome proxy: the upstream connection failed"
                await wire.send_simple_response(self.conn, self.writer, 502, message)
            return False
        outcome = receiving.result()
        if not sending.done():
            # The upstream answered before the request body ended: this connection is spent.
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
            return False
        if outcome == "upgraded":
            await self._splice_upgraded(injection)
            return False
        if self.up_conn.our_state is h11.DONE and self.up_conn.their_state is h11.DONE:
            self.up_conn.start_next_cycle()
        else:
            await self.close_upstream()
        return True

    async def _pump_request_body(self) -> None:
        while True:
            event = await wire.next_event(self.conn, self.reader, IO_TIMEOUT)
            if isinstance(event, h11.Data):
                await wire.send(self.up_conn, self.up_writer, h11.Data(data=event.data))
            elif isinstance(event, h11.EndOfMessage):
                await wire.send(self.up_conn, self.up_writer, h11.EndOfMessage(headers=event.headers))
                return
            else:
                raise PeerClosed("client went away mid-request")

    async def _pump_response(self, request, route, injection, state) -> str:
        scrubber = self.server.scrubber_for(injection) if injection is not None else None
        body = scrubber.stream() if scrubber else None
        while True:
            event = await wire.next_event(self.up_conn, self.up_reader, IO_TIMEOUT)
            if isinstance(event, h11.InformationalResponse):
                if event.status_code == 101:
                    await self._send_head(h11.InformationalResponse, event, scrubber, state)
                    self._audit(request, route, injection, 101)
                    return "upgraded"
                await self._send_head(h11.InformationalResponse, event, scrubber, state)
            elif isinstance(event, h11.Response):
                await self._send_head(h11.Response, event, scrubber, state)
                self._audit(request, route, injection, event.status_code)
            elif isinstance(event, h11.Data):
                data = body.feed(event.data) if body else event.data
                if data:
                    await wire.send(self.conn, self.writer, h11.Data(data=data))
            elif isinstance(event, h11.EndOfMessage):
                tail = body.flush() if body else b""
                if tail:
                    await wire.send(self.conn, self.writer, h11.Data(data=tail))
                await wire.send(self.conn, self.writer, h11.EndOfMessage())
                return "done"
            else:
                raise PeerClosed("upstream closed mid-response")

    async def _send_head(self, kind, event, scrubber, state) -> None:
        headers = [(k, v) for k, v in event.headers.raw_items() if k.lower() not in wire.HOP_BY_HOP]
        if scrubber:
            headers = [(k, scrubber.scrub(v)) for k, v in headers]
        state["response_started"] = state["response_started"] or kind is h11.Response
        await wire.send(
            self.conn, self.writer, kind(status_code=event.status_code, headers=headers, reason=event.reason)
        )

    def _audit(self, request: h11.Request, route, injection, status: int) -> None:
        if injection is None or route is None:
            return
        path = request.target.split(b"?", 1)[0].decode("ascii", "replace")
        if not path.startswith("/"):
            path = urlsplit(path).path or "/"
        self.server.record(
            {
                "provider": route.provider_name,
                "connection": route.connection,
                "host": self.host,
                "method": request.method.decode("ascii", "replace"),
                "path": path,
                "status": status,
            }
        )

    async def _splice_upgraded(self, injection) -> None:
        """After a 101 (WebSocket): raw bytes both ways, server frames scrubbed when injected."""
        transform = None
        if injection is not None:
            from authsome.proxy.ws_scrub import WebSocketScrubber

            transform = WebSocketScrubber(self.server.scrubber_for(injection)).feed
        client_early, _ = self.conn.trailing_data
        upstream_early, _ = self.up_conn.trailing_data
        if client_early:
            self.up_writer.write(client_early)
        if upstream_early:
            self.writer.write(transform(upstream_early) if transform else upstream_early)
        await wire.splice(self.reader, self.writer, self.up_reader, self.up_writer, b_to_a=transform)
