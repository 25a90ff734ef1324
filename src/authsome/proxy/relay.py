"""Relaying HTTP/1.1 requests to one upstream, injecting a credential where allowed.

Used for intercepted TLS connections (after the proxy terminated the
client's TLS) and for plain ``http://`` requests to hosts no route matches.
Bodies stream both ways piece by piece; nothing is buffered whole, and what
has arrived is written out before the relay waits for more (server-sent
events are not delayed). A credential is injected only when the connection
has a route, the TLS SNI and the CONNECT target agree, and the request's
Host names that same host. Every body is re-framed from what llhttp parsed,
so the upstream sees exactly the message boundaries the proxy saw.
"""

from __future__ import annotations

import socket
import ssl
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httptools

from authsome.proxy import wire
from authsome.proxy.decode import BodyDecodeError, UndecodableBody, decoder_for
from authsome.proxy.http1 import END, Head, HeadTooLarge, RequestReader, ResponseReader
from authsome.proxy.message import Prepared, body_frame, connection_scoped, with_query
from authsome.proxy.wire import HEAD_TIMEOUT, IO_TIMEOUT, LAST_CHUNK, PeerClosed

if TYPE_CHECKING:
    from authsome.proxy.routes import Route
    from authsome.proxy.server import ProxyServer


_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})


class UpstreamError(Exception):
    """The upstream could not be reached or verified; the message is safe to show."""


class _EndConnection(Exception):
    """The exchange cannot go on (the client went away, or a response broke off): close the connection."""


class HttpRelay:
    """One client connection's requests, relayed to ``host:port``."""

    def __init__(
        self,
        server: ProxyServer,
        sock,
        host: str,
        port: int,
        *,
        tls: bool,
        route: Route | None = None,
        sni_ok: bool = False,
        reader: RequestReader | None = None,
        owner=None,
    ) -> None:
        self.server = server
        self.owner = owner  # the accepted socket this connection is tracked under (for close())
        self.sock = sock
        self.reader = reader or RequestReader(sock)
        self.host, self.port, self.tls = host, port, tls
        self.route = route if sni_ok else None
        self.up = None
        self.up_reader: ResponseReader | None = None
        self._host_ok_value: bytes | None = None

    def serve(self) -> None:
        """Handle requests on the (already TLS-terminated) client connection until it ends."""
        try:
            while True:
                try:
                    request = wire.next_event(self.reader, HEAD_TIMEOUT)
                except HeadTooLarge:
                    wire.send_simple_response(self.sock, 431, "authsome proxy: request head too large")
                    return
                except httptools.HttpParserError:
                    wire.send_simple_response(self.sock, 400, "authsome proxy: bad request")
                    return
                except PeerClosed:
                    return
                if not isinstance(request, Head) or not self.handle_request(request):
                    return
        finally:
            self.close_upstream()

    def close_upstream(self) -> None:
        if self.up is not None:
            self.server.release(self.owner, self.up)
            wire.close(self.up)
        self.up = self.up_reader = None

    # -- one request -----------------------------------------------------------
    def _host_header_ok(self, request: Head) -> bool:
        value = request.get(b"host")
        if value is None:
            return False
        if value == self._host_ok_value:  # same as the last request on this connection
            return True
        parsed = wire.split_host_port(value.decode("ascii", "replace"), 443 if self.tls else 80)
        if parsed is None or (wire.canonical_host(parsed[0]), parsed[1]) != (self.host, self.port):
            return False
        self._host_ok_value = value
        return True

    def _origin_target(self, request: Head) -> bytes | None:
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

    def handle_request(self, request: Head) -> bool:
        """Relay one request and its response; False when the client connection must close."""
        target = self._origin_target(request)
        if target is None:
            wire.send_simple_response(self.sock, 400, "authsome proxy: bad request target")
            return False
        if request.count(b"host") > 1:
            # Two Host headers could name two hosts to two parsers: refuse rather than guess.
            wire.send_simple_response(self.sock, 400, "authsome proxy: more than one Host header")
            return False
        if request.upgrade and request.framing() != "none":
            # llhttp hands an Upgrade request's body over as "upgraded" bytes: it cannot be relayed
            # as a body. (WebSocket handshakes have none; h2c upgrades with a body are not supported.)
            wire.send_simple_response(self.sock, 400, "authsome proxy: an Upgrade request with a body is not supported")
            return False
        route = self.route if self.route is not None and self._host_header_ok(request) else None
        prepared = None
        if route is not None:
            try:
                prepared = self.server.prepared(route.injection())
            except Exception as exc:  # noqa: BLE001 - the lookup's failure is reported, never raised
                wire.send_simple_response(self.sock, 502, self.server.lookup_error(route, exc))
                return False
            target = with_query(target, prepared.query)
        framing = request.framing()
        out = [self._upstream_head(request, target, prepared)]
        body_done = self._take_queued_body(out, framing)
        upstream_request = b"".join(out)
        # An idempotent request already read whole may be sent again once, on a fresh
        # connection, when a kept-alive upstream connection turns out to be closed.
        retry_allowed = body_done and request.method in _IDEMPOTENT
        while True:
            reused = self.up is not None
            try:
                self._ensure_upstream()
            except UpstreamError as exc:
                wire.send_simple_response(self.sock, 502, str(exc))
                return False
            self.up_reader.expect(request.method)
            try:
                wire.send(self.up, upstream_request)
            except PeerClosed:
                if reused and retry_allowed:
                    self.close_upstream()
                    retry_allowed = False
                    continue
                wire.send_simple_response(self.sock, 502, "authsome proxy: upstream closed")
                return False
            try:
                return self._exchange(request, route, prepared, framing, body_done)
            except _Retry:
                if not (reused and retry_allowed):
                    wire.send_simple_response(self.sock, 502, "authsome proxy: the upstream connection failed")
                    return False
                self.close_upstream()
                retry_allowed = False
            except _EndConnection:
                return False

    def _upstream_head(self, request: Head, target: bytes, prepared: Prepared | None) -> bytes:
        dropped = prepared.dropped if prepared is not None else wire.HOP_BY_HOP
        if not request.upgrade:
            # Hop-by-hop: the proxy keeps its upstream connection as it sees fit. (An upgrade
            # request's "Connection: Upgrade" must reach the upstream.)
            dropped = connection_scoped(request, dropped)
        lines = [b"%s %s HTTP/1.1\r\n" % (request.method, target)]
        lines += [b"%s: %s\r\n" % (k, v) for k, v in request.headers if k.lower() not in dropped]
        if prepared is not None:
            lines.append(prepared.header_lines)
        lines.append(b"\r\n")
        return b"".join(lines)

    def _take_queued_body(self, out: list, framing: str) -> bool:
        """Move request-body pieces already parsed into ``out``; True once the body is complete."""
        events = self.reader.events
        while events:
            event = events.popleft()
            if event is END:
                if framing == "chunked":
                    out.append(LAST_CHUNK)
                return True
            out.append(body_frame(framing, event))
        return False

    def _ensure_upstream(self) -> None:
        if self.up is not None and self.up_reader.reusable and not self.up_reader.events:
            return
        self.close_upstream()
        try:
            sock = wire.connect(self.host, self.port)
            if self.tls:
                try:
                    sock = self.server.upstream_ssl.wrap_socket(sock, server_hostname=self.host)
                except BaseException:
                    wire.close(sock)
                    raise
        except ssl.SSLCertVerificationError as exc:
            raise UpstreamError(
                f"authsome proxy: the TLS certificate of {self.host} could not be verified "
                f"({exc.verify_message}). Behind a TLS-inspecting proxy, set AUTHSOME_CA_BUNDLE "
                "to its CA certificate file."
            ) from None
        except (OSError, ssl.SSLError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
            raise UpstreamError(f"authsome proxy: cannot connect to {self.host}:{self.port}: {reason}") from None
        self.up = sock
        self.up_reader = ResponseReader(sock)
        self.server.adopt(self.owner, sock)

    # -- the exchange ------------------------------------------------------------
    def _exchange(self, request: Head, route, prepared, framing: str, body_done: bool) -> bool:
        if not body_done:
            expects_continue = (request.get(b"expect") or b"").lower() == b"100-continue"
            if not (expects_continue and self._upstream_speaks_first()):
                body_done = self._pump_body(framing)
        return self._relay_response(request, route, prepared, framing, body_done)

    def _upstream_speaks_first(self) -> bool:
        """With ``Expect: 100-continue``: wait for the upstream's answer or the client's body."""
        if self.reader.events or (self.tls and self.sock.pending()):
            return False
        ready = wire.readable([self.sock, self.up], IO_TIMEOUT)
        return self.up in ready and self.sock not in ready

    def _pump_body(self, framing: str) -> bool:
        """Relay the rest of the request body; False when the upstream stopped taking it or answered early."""
        while True:
            try:
                event = wire.next_event(self.reader, IO_TIMEOUT)
            except (PeerClosed, HeadTooLarge, httptools.HttpParserError):
                raise _EndConnection() from None
            data = LAST_CHUNK if event is END and framing == "chunked" else b"" if event is END else None
            try:
                wire.send(self.up, data if data is not None else body_frame(framing, event))
            except PeerClosed:
                return False  # it may have answered already (413, 401): relay that
            if event is END:
                return True
            if self._upstream_answered_early():
                return False

    def _upstream_answered_early(self) -> bool:
        """Has the upstream begun its response while the request body is still being sent?

        A server refusing an upload (413, 401) answers at once and may read no
        further; RFC 9112 section 9.3 asks a client to watch for that and stop
        sending, rather than push the rest of a large body at it.
        """
        up, reader = self.up, self.up_reader
        if reader.events:
            return True
        if not (self.tls and up.pending()) and not wire.readable([up], 0):
            return False
        try:
            if self.tls:
                up.settimeout(0.0)
                data = up.recv(wire.READ_SIZE)
            else:
                data = up.recv(wire.READ_SIZE, socket.MSG_DONTWAIT)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return False  # TLS housekeeping only (a session ticket): no response yet
        except (OSError, ssl.SSLError):
            return True  # broken: reading the response reports it
        if not data:
            return True  # closed: reading the response reports it
        try:
            reader.feed(data)
        except (HeadTooLarge, httptools.HttpParserError):
            wire.send_simple_response(self.sock, 502, "authsome proxy: the upstream sent a malformed response")
            raise _EndConnection() from None
        return True

    def _relay_response(self, request: Head, route, prepared, framing: str, body_done: bool) -> bool:
        scrubber = prepared.scrubber if prepared is not None else None
        up_reader = self.up_reader
        while True:
            try:
                head = wire.next_event(up_reader, IO_TIMEOUT)
            except (PeerClosed, HeadTooLarge, httptools.HttpParserError):
                if up_reader.fed == 0:
                    raise _Retry() from None
                wire.send_simple_response(self.sock, 502, "authsome proxy: the upstream connection failed")
                return False
            if head.status >= 200 or head.status == 101:
                break
            # Informational (100 Continue, 103 Early Hints): relay, then the real response follows.
            self._drop_end(up_reader)
            wire.send(self.sock, self._client_head(head, scrubber, head.headers))
            if not body_done:
                body_done = self._pump_body(framing)
        self._audit(request, route, prepared, head.status)  # before the response goes out: never lost at exit
        if head.status == 101:
            self._drop_end(up_reader)
            self._splice_upgraded(head, scrubber)
            return False
        keep = self._relay_body(request, head, scrubber, must_close=not body_done or request.upgrade)
        if not body_done:
            # The client may still be sending the body: a close now would reset the
            # connection and could destroy the answer before the client reads it.
            wire.lingering_close(self.sock)
        return keep

    def _relay_body(self, request: Head, head: Head, scrubber, must_close: bool = False) -> bool:
        """Relay the final response; True when both connections may be kept."""
        headers = head.headers
        decoder = None
        bodiless = request.method == b"HEAD" or head.status in (204, 304)
        client_framing = "none" if bodiless else head.framing()
        # The client's connection outlives an upstream that closes: the next request reconnects upstream.
        keep = request.keep_alive and not must_close
        if not head.keep_alive:
            self.up_reader.reusable = False
        eof_delimited = not bodiless and self.up_reader.eof_delimited
        if scrubber is not None and not bodiless and b"content-encoding" in head.index:
            try:
                decoder, headers = decoder_for(headers)  # compressed despite our request
            except UndecodableBody as exc:
                # Relaying it unchecked could hand the child a reflected secret.
                self.close_upstream()
                wire.send_simple_response(self.sock, 502, str(exc))
                return False
            if decoder is not None and not eof_delimited:
                headers = [(k, v) for k, v in headers if k.lower() != b"transfer-encoding"]
                headers.append((b"transfer-encoding", b"chunked"))
                client_framing = "chunked"
        if eof_delimited:
            client_framing, keep = "eof", False
        # Hop-by-hop (RFC 9110 7.6.1): Connection and what it names stay here.
        out = bytearray(self._client_head(head, scrubber, headers, connection_scoped(head, wire.HOP_BY_HOP)))
        if not keep:
            out[-2:-2] = b"connection: close\r\n"  # the client is told whenever the proxy will close
        up_reader = self.up_reader
        events = up_reader.events
        if (
            decoder is None
            and len(events) == 2
            and events[1] is END
            and isinstance(events[0], bytes)
            and client_framing != "chunked"
        ):
            # The common small response: the whole body is here, so scrub it in one go.
            piece = events.popleft()
            events.popleft()
            out += scrubber.scrub(piece) if scrubber is not None else piece
            wire.send(self.sock, out)
            if not (keep and up_reader.reusable):
                self.close_upstream()
            return keep
        body = scrubber.stream() if scrubber is not None else None
        while True:
            if not events:
                wire.send(self.sock, out)  # what arrived goes out before we wait for more
                out.clear()
            try:
                event = wire.next_event(up_reader, IO_TIMEOUT)
            except (PeerClosed, HeadTooLarge, httptools.HttpParserError):
                raise _EndConnection() from None  # the response started: all we can do is close
            try:
                if event is END:
                    tail = body.feed(decoder.flush()) if decoder is not None else b""
                    tail += body.flush() if body is not None else b""
                    out += body_frame(client_framing, tail)
                    if client_framing == "chunked":
                        out += LAST_CHUNK
                    wire.send(self.sock, out)
                    break
                if decoder is None and body is not None and events and events[0] is END:
                    out += body_frame(client_framing, body.feed_last(event))  # whole body here: nothing held back
                    continue
                for piece in decoder.feed(event) if decoder is not None else (event,):
                    data = body.feed(piece) if body is not None else piece
                    out += body_frame(client_framing, data)
                    if len(out) >= wire.READ_SIZE:  # a decoded body can be large: keep writes bounded
                        wire.send(self.sock, out)
                        out.clear()
            except BodyDecodeError:
                raise _EndConnection() from None  # corrupt compressed data mid-response: all we can do is close
        if not (keep and up_reader.reusable):
            self.close_upstream()
        return keep

    @staticmethod
    def _drop_end(reader: ResponseReader) -> None:
        if reader.events and reader.events[0] is END:
            reader.events.popleft()

    @staticmethod
    def _client_head(head: Head, scrubber, headers, dropped: frozenset = wire.HOP_BY_HOP) -> bytes:
        """The response head for the client, without ``dropped`` headers, secrets scrubbed from all of it."""
        data = wire.response_head(head.status, head.reason, [(k, v) for k, v in headers if k.lower() not in dropped])
        # Same-length markers, and no secret form holds CR or LF: the head's framing is unchanged.
        return scrubber.scrub(data) if scrubber is not None else data

    def _audit(self, request: Head, route, prepared, status: int) -> None:
        if prepared is None or route is None:
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

    def _splice_upgraded(self, head: Head, scrubber) -> None:
        """After a 101 (WebSocket): raw bytes both ways, server frames scrubbed when injected."""
        from authsome.proxy.splice import splice

        transform = None
        if scrubber is not None:
            from authsome.proxy.ws_scrub import WebSocketScrubber

            transform = WebSocketScrubber(scrubber).feed
        wire.send(self.sock, self._client_head(head, scrubber, head.headers))
        upstream_early = self.up_reader.upgraded or b""
        if upstream_early and transform is not None:
            upstream_early = transform(upstream_early)
        splice(self.sock, self.up, b_to_a=transform, to_a=upstream_early, to_b=self.reader.upgraded or b"")


class _Retry(Exception):
    """The kept-alive upstream closed before answering: the request may be sent again."""
