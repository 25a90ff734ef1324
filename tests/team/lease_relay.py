"""An HTTP relay in front of the engine that makes two machines' lease claims collide, every time.

It forwards every request unchanged, except the first lease *claims* (a POST
to ``.../_lease/...`` with a holder): it holds each until ``parties`` claims
are waiting at once, then lets them all go together. Each machine's
processes queue on a local lock first, so the held claims come from
different machines; ``held_cas`` records the KV version each claim was based
on, so a test can check they had all read the same one.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

HOLD_SECONDS = 15
FORWARDED_HEADERS = ("X-Vault-Token", "X-Vault-Index", "X-Vault-Request", "Content-Type")


class LeaseRelay:
    def __init__(self, upstream: str, parties: int = 2) -> None:
        self.upstream = upstream.rstrip("/")
        self.parties = parties
        self.held_cas: list[int | None] = []
        self.released = False
        self._cond = threading.Condition()
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.command == "POST" and "/_lease/" in self.path:
                    relay._maybe_hold(body)
                headers = {h: self.headers[h] for h in FORWARDED_HEADERS if self.headers.get(h)}
                answer = requests.request(
                    self.command, relay.upstream + self.path, data=body or None, headers=headers, timeout=30,
                    allow_redirects=False,
                )  # fmt: skip
                self.send_response(answer.status_code)
                for name in ("Content-Type", "X-Vault-Index"):
                    if answer.headers.get(name):
                        self.send_header(name, answer.headers[name])
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_DELETE = do_LIST = _relay

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _maybe_hold(self, body: bytes) -> None:
        try:
            request = json.loads(body)
        except ValueError:
            return
        if not (request.get("data") or {}).get("holder"):
            return  # a release, not a claim
        with self._cond:
            if self.released:
                return
            self.held_cas.append((request.get("options") or {}).get("cas"))
            if len(self.held_cas) >= self.parties:
                self.released = True
                self._cond.notify_all()
                return
            self._cond.wait_for(lambda: self.released, timeout=HOLD_SECONDS)
            self.released = True  # a lone claim goes on after the bounded wait (the test then fails)

    def __enter__(self) -> LeaseRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
