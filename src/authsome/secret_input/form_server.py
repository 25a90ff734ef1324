"""The HTTP side of the browser form: a hardened, one-shot server on loopback.

The URL carries a one-time token; the form carries a separate CSRF token. The
server answers only requests whose Host names it (DNS rebinding), refuses
cross-origin POSTs, sends a strict CSP and no-store, and bounds everything a
hostile local client could abuse: body size, time per connection, number of
connections. A submitted secret is never written back into any response.
Standard library only (http.server with threads); nothing is logged per request.
"""

from __future__ import annotations

import hmac
import http.server
import secrets
import socket
import socketserver
import threading
import time
from urllib.parse import parse_qs, urlsplit

from authsome.errors import InvalidCredentialError
from authsome.secret_input import form_page
from authsome.secret_input.request import SecretRequest

MAX_BODY_BYTES = 64 * 1024
DRAIN_LIMIT_BYTES = 1024 * 1024  # read and drop an oversized body up to this, so the client sees the 413
SOCKET_TIMEOUT = 10.0  # seconds per read or write on one connection
CONNECTION_DEADLINE = 30.0  # seconds a connection may live at all (slowloris)
MAX_CONNECTIONS = 16

_SECURITY_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("Cache-Control", "no-store"),
    ("Pragma", "no-cache"),
    ("X-Frame-Options", "DENY"),
    # "same-origin", not "no-referrer": with no-referrer browsers send `Origin: null` on the form's
    # own POST, which would defeat the Origin check. Same-origin still never sends the token URL
    # to another site (and the CSP lets the page load nothing from anywhere).
    ("Referrer-Policy", "same-origin"),
    ("X-Content-Type-Options", "nosniff"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)


class Session:
    """State shared by the handler threads of one capture."""

    def __init__(self, request: SecretRequest) -> None:
        self.request = request
        self.url_token = secrets.token_urlsafe(32)
        self.csrf_token = secrets.token_urlsafe(32)
        self.port = 0
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.consumed = False  # a valid value was accepted: the tokens are spent
        self.failed = False  # validate() raised something other than InvalidCredentialError
        self.result: dict[str, str] | None = None

    @property
    def path(self) -> str:
        return f"/login/{self.url_token}"

    def accept(self, values: dict[str, str]) -> str:
        """Validate and take ``values``: ``"accepted"``, ``"spent"`` (a value was already taken) or
        ``"failed"`` (the validator crashed). InvalidCredentialError propagates and the tokens stay valid."""
        with self.lock:
            if self.consumed:
                return "spent"
            try:
                self.request.validate(values)
            except InvalidCredentialError:
                raise
            except Exception:
                # A bug in a validator: stop, without letting its text (maybe the value) out.
                self.consumed = self.failed = True
                return "failed"
            self.consumed = True
            self.result = dict(values)
            return "accepted"

    def host_allowed(self, host: str) -> bool:
        return host in (f"127.0.0.1:{self.port}", f"localhost:{self.port}")


class FormServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True  # a previous run's TIME_WAIT must not push us off 7998

    def __init__(self, port: int, session: Session) -> None:
        self.session = session
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._open: dict[socket.socket, float] = {}
        self._open_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)
        session.port = self.server_address[1]

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup we do not need.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def process_request(self, request, client_address) -> None:  # type: ignore[override]
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # too many connections: drop this one at once
            return
        with self._open_lock:
            self._open[request] = time.monotonic()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._forget(request)
            raise

    def process_request_thread(self, request, client_address) -> None:  # type: ignore[override]
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._forget(request)

    def _forget(self, request: socket.socket) -> None:
        with self._open_lock:
            if self._open.pop(request, None) is not None:
                self._slots.release()

    def handle_error(self, request, client_address) -> None:  # type: ignore[override]
        # Never a traceback on the user's terminal (it could hold request data).
        return None

    def reap(self, max_age: float) -> None:
        """Cut connections older than ``max_age`` seconds (slow or stalled clients)."""
        now = time.monotonic()
        with self._open_lock:
            stale = [sock for sock, started in self._open.items() if now - started > max_age]
        for sock in stale:
            _shutdown_quietly(sock)

    def close_all(self) -> None:
        with self._open_lock:
            remaining = list(self._open)
        for sock in remaining:
            _shutdown_quietly(sock)


def _shutdown_quietly(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FormServer
    protocol_version = "HTTP/1.0"  # one request per connection, then close

    def setup(self) -> None:
        self.timeout = SOCKET_TIMEOUT
        super().setup()

    def version_string(self) -> str:
        return "authsome"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return None  # nothing per request on stderr

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Used by http.server for malformed requests; answer in our own plain, headed way.
        self._reply(code, f"{code} {message or self.responses.get(code, ('Error',))[0]}\n".encode())

    # Methods -----------------------------------------------------------
    def do_GET(self) -> None:
        if self._check_target():
            self._reply(200, form_page.render_form(self.server.session.request, self.server.session.csrf_token))

    def do_POST(self) -> None:
        if self._check_target() and self._check_origin():
            self._handle_submission()

    def _method_not_allowed(self) -> None:
        self._reply(405, b"405 Method Not Allowed\n", extra=(("Allow", "GET, POST"),))

    do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _method_not_allowed

    # Checks --------------------------------------------------------------
    def _check_target(self) -> bool:
        """Host must name this server; path must carry the live one-time token."""
        session = self.server.session
        hosts = self.headers.get_all("Host") or []
        if len(hosts) != 1 or not session.host_allowed(hosts[0].strip().lower()):
            self._reply(403, b"403 Forbidden: unexpected Host header\n")
            return False
        path = urlsplit(self.path).path if self.path.startswith("/") else ""
        prefix = "/login/"
        if not path.startswith(prefix):
            self._reply(404, b"404 Not Found\n")
            return False
        candidate = path[len(prefix) :].encode("utf-8", "replace")
        if not hmac.compare_digest(candidate, session.url_token.encode()):
            self._reply(403, b"403 Forbidden: this link is not valid\n")
            return False
        if session.consumed:
            self._reply(403, b"403 Forbidden: this link was already used\n")
            return False
        return True

    def _check_origin(self) -> bool:
        """A POST must come from our own page (absent Origin is tolerated: CSRF token still needed)."""
        host = self.headers["Host"].strip().lower()
        origins = self.headers.get_all("Origin") or []
        if origins and (len(origins) != 1 or origins[0].strip().lower() != f"http://{host}"):
            self._reply(403, b"403 Forbidden: cross-origin request\n")
            return False
        fetch_site = self.headers.get("Sec-Fetch-Site")
        if fetch_site is not None and fetch_site.strip().lower() != "same-origin":
            self._reply(403, b"403 Forbidden: cross-site request\n")
            return False
        return True

    def _read_form(self) -> dict[str, list[str]] | None:
        """The url-encoded body, or None after replying with an error."""
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            self._reply(415, b"415 Unsupported Media Type\n")
            return None
        if self.headers.get("Transfer-Encoding") is not None:
            self._reply(411, b"411 Length Required\n")
            return None
        lengths = self.headers.get_all("Content-Length") or []
        if len(lengths) != 1 or not lengths[0].strip().isdigit():
            self._reply(411, b"411 Length Required\n")
            return None
        length = int(lengths[0])
        if length > MAX_BODY_BYTES:
            if length <= DRAIN_LIMIT_BYTES:
                self.rfile.read(length)  # so the client is not reset before it reads our answer
            self._reply(413, b"413 Payload Too Large\n")
            return None
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True  # client went away mid-body
            return None
        try:
            return parse_qs(
                body.decode("ascii"),
                keep_blank_values=True,
                strict_parsing=bool(body),
                encoding="utf-8",
                errors="strict",
                max_num_fields=64,
            )
        except (UnicodeDecodeError, ValueError):
            self._reply(400, b"400 Bad Request\n")
            return None

    # Submission ----------------------------------------------------------
    def _handle_submission(self) -> None:
        session = self.server.session
        request = session.request
        form = self._read_form()
        if form is None:
            return
        if any(len(values) != 1 for values in form.values()):
            self._reply(400, b"400 Bad Request: repeated field\n")
            return
        sent_csrf = form.get("csrf_token", [""])[0].encode("utf-8", "replace")
        if not hmac.compare_digest(sent_csrf, session.csrf_token.encode()):
            self._reply(403, b"403 Forbidden: missing or wrong form token; reload the link\n")
            return
        values = {field.name: form.get(field.name, [""])[0].strip() for field in request.fields}
        kept = {field.name: values[field.name] for field in request.fields if not field.secret}

        problem = _first_problem(request, values)
        if problem is not None:
            self._reply_form(400, problem, None, kept)
            return
        try:
            outcome = session.accept(values)
        except InvalidCredentialError as err:
            self._reply_form(400, err.message, err.hint, kept)
            return
        if outcome == "spent":
            self._reply(403, b"403 Forbidden: this link was already used\n")
            return
        if outcome == "failed":
            try:
                self._reply(500, b"500 authsome hit an internal error; see the terminal\n")
            finally:
                session.done.set()
            return
        try:
            self._reply(200, form_page.render_done(request))
        finally:
            session.done.set()

    def _reply_form(self, status: int, error: str, hint: str | None, kept: dict[str, str]) -> None:
        session = self.server.session
        page = form_page.render_form(session.request, session.csrf_token, error=error, hint=hint, kept_values=kept)
        self._reply(status, page)

    def _reply(self, status: int, body: bytes, extra: tuple[tuple[str, str], ...] = ()) -> None:
        html = body.startswith(b"<!DOCTYPE html>")
        self.close_connection = True
        if self.request_version == "HTTP/0.9":
            self.request_version = "HTTP/1.0"  # always a status line and our headers
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8" if html else "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            for name, value in _SECURITY_HEADERS + extra:
                self.send_header(name, value)
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:
            pass  # the client left; nothing to tell anyone


def _first_problem(request: SecretRequest, values: dict[str, str]) -> str | None:
    for field in request.fields:
        value = values[field.name]
        if not value:
            return f"Please enter the {field.label}."
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            return f"The {field.label} contains line breaks or control characters; paste it again."
    return None
