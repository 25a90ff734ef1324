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
from authsome.proxy.decode import decoder_for
from authsome.proxy.wire import IO_TIMEOUT, PeerClosed

if TYPE_CHECKING:
    from authsome.proxy.routes import Route
    from authsome.proxy.server import ProxyServer


_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})
_RETRY = object()


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
        upstream_request = h11.Request(method=request.method, target=target, headers=headers)
        # An idempotent request already read whole may be sent again once, on a fresh
        # connection, when a kept-alive upstream connection turns out to be closed.
        retry_allowed = request.method in _IDEMPOTENT
        while True:
            reused = self.up_reader is not None
            try:
                await self._ensure_upstream()
            except UpstreamError as exc:
                await wire.send_simple_response(self.conn, self.writer, 502, str(exc))
                return False
            try:
                out = bytearray(self.up_conn.send(upstream_request))
                # A request whose body is already here (a GET, a small POST) goes out in one write.
                body_done = self._take_available_body(out)
                await self._write(self.up_writer, out)
            except (PeerClosed, h11.LocalProtocolError):
                await wire.send_simple_response(self.conn, self.writer, 502, "authsome proxy: upstream closed")
                return False
            outcome = await self._exchange(request, route, injection, body_done, retry=reused and retry_allowed)
            if outcome is not _RETRY:
                return outcome
            await self.close_upstream()
            retry_allowed = False

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
                    context = await self.server.upstream_ssl_async()
                    self.up_reader, self.up_writer = await asyncio.open_connection(
                        self.host, self.port, ssl=context, server_hostname=self.host
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

    async def _exchange(self, request: h11.Request, route, injection, body_done: bool, retry: bool = False):
        """Relay the response; True/False: keep the client connection; ``_RETRY``: send again."""
        state = {"response_started": False}
        if body_done:  # common case: no concurrent body upload, so no extra tasks
            try:
                outcome = await self._pump_response(request, route, injection, state)
            except (PeerClosed, TimeoutError, h11.ProtocolError, OSError):
                if retry and not state.get("upstream_sent_bytes"):
                    return _RETRY
                return await self._upstream_failed(state)
            return await self._finish_exchange(outcome, injection)
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
            return await self._upstream_failed(state)
        if not sending.done():
            # The upstream answered before the request body ended: this connection is spent.
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
            return False
        return await self._finish_exchange(receiving.result(), injection)

    async def _upstream_failed(self, state) -> bool:
        if not state["response_started"]:
            message = "authsome proxy: the upstream connection failed"
            await wire.send_simple_response(self.conn, self.writer, 502, message)
        return False

    async def _finish_exchange(self, outcome: str, injection) -> bool:
        if outcome == "upgraded":
            await self._splice_upgraded(injection)
            return False
        if self.up_conn.our_state is h11.DONE and self.up_conn.their_state is h11.DONE:
            self.up_conn.start_next_cycle()
        else:
            await self.close_upstream()
        return True

    @staticmethod
    async def _write(writer: asyncio.StreamWriter, data: bytearray) -> None:
        if not data:
            return
        writer.write(bytes(data))
        try:
            async with asyncio.timeout(IO_TIMEOUT):
                await writer.drain()
        except (ConnectionError, OSError) as exc:
            raise PeerClosed(str(exc)) from None

    def _take_available_body(self, out: bytearray) -> bool:
        """Move request-body events already received into ``out``; True once the body is complete."""
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                return False
            if isinstance(event, h11.Data):
                out += self.up_conn.send(h11.Data(data=event.data))
            elif isinstance(event, h11.EndOfMessage):
                out += self.up_conn.send(h11.EndOfMessage(headers=event.headers))
                return True
            else:
                raise PeerClosed("client went away mid-request")

    async def _pump_request_body(self) -> None:
        while True:
            out = bytearray()
            if self._take_available_body(out):
                await self._write(self.up_writer, out)
                return
            await self._write(self.up_writer, out)
            try:
                async with asyncio.timeout(IO_TIMEOUT):
                    data = await self.reader.read(wire.READ_SIZE)
            except (ConnectionError, OSError) as exc:
                raise PeerClosed(str(exc)) from None
            self.conn.receive_data(data)

    async def _pump_response(self, request, route, injection, state) -> str:
        """Relay the response; writes are batched per read from the upstream, never held longer."""
        scrubber = self.server.scrubber_for(injection) if injection is not None else None
        body = scrubber.stream() if scrubber else None
        decoder = None
        out = bytearray()
        while True:
            event = self.up_conn.next_event()
            if event is h11.NEED_DATA:
                await self._write(self.writer, out)
                out.clear()
                try:
                    async with asyncio.timeout(IO_TIMEOUT):
                        data = await self.up_reader.read(wire.READ_SIZE)
                except (ConnectionError, OSError) as exc:
                    raise PeerClosed(str(exc)) from None
                if data:
                    state["upstream_sent_bytes"] = True
                self.up_conn.receive_data(data)
            elif isinstance(event, h11.InformationalResponse):
                out += self._head(h11.InformationalResponse, event, scrubber, state)
                if event.status_code == 101:
                    await self._write(self.writer, out)
                    self._audit(request, route, injection, 101)
                    return "upgraded"
            elif isinstance(event, h11.Response):
                headers = list(event.headers.raw_items())
                if scrubber and request.method != b"HEAD":
                    decoder, headers = decoder_for(headers)  # compressed despite our request
                out += self._head(h11.Response, event, scrubber, state, headers)
                self._audit(request, route, injection, event.status_code)
            elif isinstance(event, h11.Data):
                for piece in decoder.feed(event.data) if decoder else (event.data,):
                    data = body.feed(piece) if body else piece
                    if data:
                        out += self.conn.send(h11.Data(data=data))
                    if len(out) >= wire.READ_SIZE:  # a decoded body can be large: keep writes bounded
                        await self._write(self.writer, out)
                        out.clear()
            elif isinstance(event, h11.EndOfMessage):
                tail = body.feed(decoder.flush()) if decoder else b""
                tail += body.flush() if body else b""
                if tail:
                    out += self.conn.send(h11.Data(data=tail))
                out += self.conn.send(h11.EndOfMessage())
                await self._write(self.writer, out)
                return "done"
            else:
                raise PeerClosed("upstream closed mid-response")

    def _head(self, kind, event, scrubber, state, headers=None) -> bytes:
        if headers is None:
            headers = event.headers.raw_items()
        headers = [(k, v) for k, v in headers if k.lower() not in wire.HOP_BY_HOP]
        if scrubber:
            headers = [(k, scrubber.scrub(v)) for k, v in headers]
        state["response_started"] = state["response_started"] or kind is h11.Response
        reason = scrubber.scrub(event.reason) if scrubber else event.reason
        return self.conn.send(kind(status_code=event.status_code, headers=headers, reason=reason))

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
