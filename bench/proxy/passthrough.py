"""Benchmark floor: a Python TLS-intercepting relay that does no HTTP work at all.

Same threads, sockets and TLS setup as the authsome proxy (a per-run CA from
``authsome.proxy.ca``, verified upstream TLS), but each read from one side is
written to the other as it is: no parsing, no injection, no scrubbing, no
audit. It only works for the benchmark's one-request-one-response traffic.

Usage: passthrough.py CA_OUT EXTRA_CA; prints {"port": N} and serves until killed.
"""

from __future__ import annotations

import json
import socket
import ssl
import sys
import threading

from authsome.proxy.ca import RunCA


def serve_one(client: socket.socket, server_ctx: ssl.SSLContext, upstream_ctx: ssl.SSLContext) -> None:
    with client:
        head = b""
        while b"\r\n\r\n" not in head:
            data = client.recv(4096)
            if not data:
                return
            head += data
        host, _, port = head.split(b" ")[1].decode().rpartition(":")
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tls = server_ctx.wrap_socket(client, server_side=True)
        raw = socket.create_connection(("127.0.0.1", int(port)))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with upstream_ctx.wrap_socket(raw, server_hostname=host) as upstream:
            while True:
                request = tls.recv(65536)
                if not request:
                    return
                upstream.sendall(request)
                response = upstream.recv(65536)
                if not response:
                    return
                tls.sendall(response)


def main() -> None:
    ca_out, extra_ca = sys.argv[1], sys.argv[2]
    ca = RunCA(["localhost"])
    with open(ca_out, "wb") as f:
        f.write(ca.cert_pem)
    server_ctx = ca.server_context("localhost")
    upstream_ctx = ssl.create_default_context(cafile=extra_ca)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    print(json.dumps({"port": listener.getsockname()[1]}), flush=True)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=serve_one, args=(client, server_ctx, upstream_ctx), daemon=True).start()


if __name__ == "__main__":
    main()
