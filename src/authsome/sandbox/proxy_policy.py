"""The isolated run's proxy: the ordinary one plus the egress policy (egress.py).

Until the proxy grows a connect hook, this subclass applies the policy at the
two places where it opens a connection to an unmatched target: the blind
CONNECT tunnel and plain ``http://`` requests (WebSocket upgrades included).
The name is resolved here, every address is checked, and the connection is
made to the checked address itself, so a second resolution cannot change it.
Matched provider hosts go through the ordinary intercepting path untouched.
"""

from __future__ import annotations

import asyncio
import socket

import h11

from authsome.proxy import wire
from authsome.proxy.relay import HttpRelay
from authsome.proxy.routes import find_route
from authsome.proxy.server import _PROXY_AUTH_CHALLENGE, ProxyServer
from authsome.sandbox.egress import check_target, refusal_message


class IsolatedProxyServer(ProxyServer):
    """``ProxyServer`` that refuses unmatched targets the egress policy forbids (403)."""

    def __init__(self, *args, egress: str = "all", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.egress = egress

    async def allowed_address(self, host: str, port: int) -> str | None:
        """The first resolved address of an unmatched ``host`` the policy allows, else None."""
        if self.egress == "providers":
            return None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(wire.CONNECT_TIMEOUT):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError):
            return None
        for _family, _type, _proto, _name, sockaddr in infos:
            address = sockaddr[0]
            if check_target(host, port, address, matched=False, egress=self.egress):
                return address
        return None

    async def _tunnel(self, conn, reader, writer, host: str, port: int) -> None:
        address = await self.allowed_address(host, port)
        if address is None:
            await wire.send_simple_response(conn, writer, 403, refusal_message(host, port, self.egress))
            return
        await super()._tunnel(conn, reader, writer, address, port)

    async def _plain_http(self, conn, reader, writer, request: h11.Request) -> None:
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
            address = await self.allowed_address(host, port)
            if address is None:
                await wire.send_simple_response(conn, writer, 403, refusal_message(host, port, self.egress))
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
