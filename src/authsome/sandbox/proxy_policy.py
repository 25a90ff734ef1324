"""The isolated run's proxy: the ordinary one plus the egress policy (egress.py).

It fills the proxy's ``unmatched_address`` hook, which the proxy consults
before it opens a connection to a target no route matches (the blind CONNECT
tunnel, plain ``http://`` requests and the WebSocket upgrades they carry).
The name is resolved here, every address is checked, and the proxy connects
to the checked address itself, so a second resolution (DNS rebinding) cannot
change it. Matched provider hosts never reach the hook.
"""

from __future__ import annotations

import socket

from authsome.proxy.server import ProxyServer
from authsome.sandbox.egress import check_target, refusal_message


class IsolatedProxyServer(ProxyServer):
    """``ProxyServer`` that refuses unmatched targets the egress policy forbids (403)."""

    def __init__(self, *args, egress: str = "all", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.egress = egress

    def unmatched_address(self, host: str, port: int) -> str | None:
        """The first resolved address of an unmatched ``host`` the policy allows, else None (403)."""
        if self.egress == "providers":
            return None
        try:
            # On this connection's own thread: a slow resolver delays only this client.
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return None
        for _family, _type, _proto, _name, sockaddr in infos:
            address = sockaddr[0]
            if check_target(host, port, address, matched=False, egress=self.egress):
                return address
        return None

    def unmatched_refusal(self, host: str, port: int) -> str:
        return refusal_message(host, port, self.egress)
