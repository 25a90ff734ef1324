"""Benchmark helper: the authsome proxy as its own process, injecting a header for ``localhost``.

Prints one JSON line {"port", "username", "password", "ca"} and serves until
killed. Audit events are kept in memory (buffered, as the CLI does).
"""

from __future__ import annotations

import json
import socket
import sys

from authsome.providers.model import Injection
from authsome.proxy.routes import Route
from authsome.proxy.server import ProxyServer


def main() -> None:
    ca_out, extra_ca = sys.argv[1], sys.argv[2]
    injection = Injection()
    injection.headers = [("Authorization", "Bearer sk-bench-0123456789abcdef0123")]
    injection.replaces = ["authorization"]
    injection.secret_values = ["sk-bench-0123456789abcdef0123"]
    route = Route("bench", "default", ["localhost"], lambda: injection)
    events: list[dict] = []
    server = ProxyServer([route], username="authsome", password="bench", audit=events.append, extra_ca_bundle=extra_ca)
    with open(ca_out, "wb") as f:
        f.write(server.ca.cert_pem)

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    print(json.dumps({"port": listener.getsockname()[1], "username": "authsome", "password": "bench"}), flush=True)
    server.serve(listener)


if __name__ == "__main__":
    main()
