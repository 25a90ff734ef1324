"""CPU time of the relay's HTTP work per request, with warm caches and no I/O.

Drives ``HttpRelay.handle_request`` for one keep-alive exchange (the request
and response shapes of ``bench_proxy.py``: a GET with a placeholder
``Authorization``, an nginx-like JSON response) over in-memory sockets, so what
is timed is parsing, checks, injection, scrubbing and the audit record only:
no TLS, no system calls, no wake-ups. Prints the best of N rounds.

Usage: .venv/bin/python bench/proxy/relay_cpu.py [--rounds 30] [--per-round 2000]
"""

from __future__ import annotations

import argparse
import time
from collections import deque

from authsome.providers.model import Injection
from authsome.proxy import wire
from authsome.proxy.http1 import ResponseReader
from authsome.proxy.relay import HttpRelay
from authsome.proxy.routes import Route
from authsome.proxy.server import ProxyServer

REQUEST = b"GET /bench HTTP/1.1\r\nHost: localhost:8443\r\nAuthorization: Bearer placeholder\r\n\r\n"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Sat, 28 Nov 2026 13:00:00 GMT\r\n"
    b"Content-Type: application/json\r\nContent-Length: 11\r\nConnection: keep-alive\r\n\r\n"
    b'{"ok":true}'
)


class MemorySocket:
    """Hands out queued reads; takes writes and drops them."""

    def __init__(self) -> None:
        self.reads: deque[bytes] = deque()
        self._timeout = None

    def recv(self, size: int) -> bytes:
        return self.reads.popleft()

    def send(self, data) -> int:
        return len(data)

    def sendall(self, data) -> None:
        pass

    def settimeout(self, value) -> None:
        self._timeout = value

    def gettimeout(self):
        return self._timeout

    def setsockopt(self, *args) -> None:
        pass

    def pending(self) -> int:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--per-round", type=int, default=2000)
    args = parser.parse_args()

    injection = Injection()
    injection.headers = [("Authorization", "Bearer sk-bench-0123456789abcdef0123")]
    injection.replaces = ["authorization"]
    injection.secret_values = ["sk-bench-0123456789abcdef0123"]
    route = Route("bench", "default", ["localhost"], lambda: injection)
    events: list[dict] = []
    server = ProxyServer([route], username="authsome", password="bench", audit=events.append)
    client, upstream = MemorySocket(), MemorySocket()
    relay = HttpRelay(server, client, "localhost", 8443, tls=True, route=route, sni_ok=True)
    relay.up, relay.up_reader = upstream, ResponseReader(upstream)

    def exchange() -> None:
        client.reads.append(REQUEST)
        upstream.reads.append(RESPONSE)
        relay.handle_request(wire.next_event(relay.reader, wire.HEAD_TIMEOUT))

    for _ in range(args.per_round):  # warm up
        exchange()
    best = float("inf")
    for _ in range(args.rounds):
        events.clear()
        started = time.process_time()
        for _ in range(args.per_round):
            exchange()
        best = min(best, (time.process_time() - started) / args.per_round)
    assert len(events) == args.per_round  # every exchange was relayed and audited
    print(f"relay CPU per request, best of {args.rounds} rounds: {best * 1e6:.1f} us")


if __name__ == "__main__":
    main()
