"""The loopback redirect listener for the authorization code flow (RFC 8252 section 7.3).

It listens on 127.0.0.1 only, answers requests for other paths or hosts with an
error and keeps waiting, and handles exactly one request to the callback path:
after that it closes, whatever the request carried.
"""

from __future__ import annotations

import hmac
import html
import http.server
import socket
import socketserver
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from authsome.errors import CancelledError, InputTimeoutError, UsageError
from authsome.flows.oauth_http import safe_error_code

CALLBACK_PATH = "/callback"
LOOPBACK = "127.0.0.1"

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>authsome</title></head>
<body style="font-family: sans-serif; margin: 3em"><h1>{title}</h1><p>{text}</p></body></html>
"""

_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Connection": "close",
}


@dataclass
class CallbackResult:
    code: str | None = None
    error: str | None = None
    error_description: str | None = None
    state_ok: bool = False
    iss: str | None = None


# A client gets this long for its whole request, however slowly it trickles bytes (slowloris).
REQUEST_DEADLINE = 10.0
# Connections served at once; more are closed at once, so a flood cannot exhaust threads.
MAX_CONNECTIONS = 16


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """One thread per connection, so a slow or hostile client never holds up the real redirect."""

    daemon_threads = True
    expected_host: str
    expected_state: str
    result: CallbackResult | None
    claimed: bool

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.result_lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request, client_address) -> None:
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        # Cut the connection when its whole request takes longer than the deadline.
        timer = threading.Timer(REQUEST_DEADLINE, _cut, args=(request,))
        timer.daemon = True
        timer.start()
        try:
            super().process_request_thread(request, client_address)
        finally:
            timer.cancel()
            self.slots.release()


def _cut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # a client that connects and says nothing cannot hold the listener
    server_version = "authsome"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        # The request line holds the authorization code: never log it.
        return

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        if self.headers.get("Host", "") != self.server.expected_host:
            self._reply(400, "Wrong address", "This page must be opened as " + self.server.expected_host)
            return
        parts = urlsplit(self.path)
        if parts.path != CALLBACK_PATH:
            self._reply(404, "Not found", "Nothing here.")
            return
        query = parse_qs(parts.query, keep_blank_values=True)

        def one(name: str) -> str | None:
            values = query.get(name)
            return values[0] if values and len(values) == 1 else None

        state = one("state") or ""
        result = CallbackResult(
            code=one("code"),
            error=one("error"),
            error_description=one("error_description"),
            state_ok=hmac.compare_digest(state.encode(), self.server.expected_state.encode()),
            iss=one("iss"),
        )
        with self.server.result_lock:  # the first callback request wins; the listener then closes
            if self.server.claimed:
                self._reply(409, "Already answered", "This sign-in has already been answered.")
                return
            self.server.claimed = True
        try:
            if not result.state_ok:
                self._reply(400, "Sign-in stopped", "This answer does not match the sign-in authsome started.")
            elif result.error:
                self._reply(400, "Sign-in not completed", f"The provider answered: {result.error}.")
            elif not result.code:
                self._reply(400, "Sign-in not completed", "The provider sent no authorization code.")
            else:
                self._reply(200, "Signed in", "authsome received the authorization. You can close this tab.")
            self.wfile.flush()
        finally:
            # Only now, with the page sent, may wait() return: the process may exit right after it.
            self.server.result = result

    def do_POST(self) -> None:  # noqa: N802
        self._reply(405, "Not allowed", "Only GET is accepted here.")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own error page has no CSP and echoes parts of the request: use ours.
        self.close_connection = True
        self.request_version = "HTTP/1.0"  # an unparsable request line leaves 0.9, which would drop our headers
        try:
            self._reply(code, "Bad request", "authsome could not read this request.")
        except OSError:
            pass

    def _reply(self, status: int, title: str, text: str) -> None:
        body = _PAGE.format(title=html.escape(title), text=html.escape(text)).encode()
        self.send_response(status)
        for name, value in _HEADERS.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class LoopbackCallback:
    """Bind ``127.0.0.1:port`` (``port`` 0: any free port) and wait for the redirect."""

    def __init__(self, port: int = 0) -> None:
        try:
            self._server = _Server((LOOPBACK, port), _Handler)
        except OSError:
            raise UsageError(
                f"Cannot listen on {LOOPBACK}:{port} for the OAuth callback: the port is in use.",
                hint="Stop whatever uses that port (another login in progress?) and try again.",
            ) from None
        self.port = self._server.server_address[1]
        self._server.expected_host = f"{LOOPBACK}:{self.port}"
        self._server.result = None
        self._server.claimed = False

    @property
    def redirect_uri(self) -> str:
        return f"http://{LOOPBACK}:{self.port}{CALLBACK_PATH}"

    def wait(self, expected_state: str, timeout: float) -> CallbackResult:
        """Serve until the callback request arrives (then close) or ``timeout`` seconds pass."""
        self._server.expected_state = expected_state
        deadline = time.monotonic() + timeout
        try:
            while self._server.result is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise InputTimeoutError(
                        f"Timed out after {timeout:.0f} s waiting for the browser sign-in.",
                        hint="Run the login again (use --timeout SECONDS for more time).",
                    )
                self._server.timeout = min(left, 1.0)
                try:
                    self._server.handle_request()
                except OSError:  # includes socket timeouts
                    continue
            return self._server.result
        finally:
            self.close()

    def close(self) -> None:
        self._server.server_close()

    def __enter__(self) -> LoopbackCallback:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_result(result: CallbackResult, *, label: str) -> str:
    """The authorization code, or the error the callback carried."""
    if not result.state_ok:
        raise CancelledError(
            f"The OAuth callback for {label} carried a state that does not match this login; "
            "the login was stopped for safety.",
            hint="Run the login again from the start, in one browser tab.",
        )
    if result.error == "access_denied":
        raise CancelledError(
            f"The sign-in to {label} was denied at the provider.",
            hint="Run the login again and approve the request.",
        )
    if result.error or not result.code:
        reason = safe_error_code(result.error) if result.error else "no authorization code"
        raise CancelledError(
            f"The sign-in to {label} did not complete ({reason}).",
            hint="Run the login again.",
        )
    return result.code
