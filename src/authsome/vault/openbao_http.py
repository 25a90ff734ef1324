"""One HTTP exchange with one engine node, on the standard library's ``http.client``.

A node keeps one connection open between requests (the store makes several
in a row) and opens a new one when the kept one turns out to be closed.
Redirects are never followed: the token header would go along. TLS uses the
system trust store, or the CA file in ``VAULT_CACERT`` / ``BAO_CACERT`` as the
bao and vault CLIs do. ``HTTPS_PROXY`` / ``NO_PROXY`` are honoured for
``https`` engines, through a ``CONNECT`` tunnel (the proxy sees only TLS).

Failures are split in two, because the engine retries them differently:
``Unreachable`` (no connection could be made: the request was never sent)
and ``Dropped`` (the connection failed once the request was on its way).
"""

from __future__ import annotations

import base64
import http.client
import os
import socket
import ssl
from urllib.parse import unquote, urlsplit

from authsome.errors import StoreError


class Unreachable(Exception):
    """No connection to the node; the request was not sent. The message is safe to show."""


class Dropped(Exception):
    """The connection failed after the request was sent. The message is safe to show."""


class Answer:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


def tls_context() -> ssl.SSLContext:
    """The trust for engine connections: VAULT_CACERT / BAO_CACERT if set, else the system store."""
    cafile = os.environ.get("VAULT_CACERT") or os.environ.get("BAO_CACERT")
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise StoreError(
            f"The CA certificate file {cafile!r} (VAULT_CACERT / BAO_CACERT) cannot be used: "
            f"{exc.strerror or type(exc).__name__}."
        ) from None


def _proxy_for(host: str) -> str | None:
    """The HTTPS proxy URL from the environment for ``host``, unless NO_PROXY exempts it."""
    proxy = os.environ.get("https_proxy") or os.environ.get("HTTPS_PROXY")
    if not proxy:
        return None
    no_proxy = os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or ""
    host = host.lower().rstrip(".")
    for entry in no_proxy.split(","):
        entry = entry.strip().lower().lstrip(".")
        if entry == "*" or (entry and (host == entry or host.endswith("." + entry))):
            return None
    return proxy if "://" in proxy else "http://" + proxy


def _reason(exc: BaseException) -> str:
    """Why a connection could not be made, in a few words (never more than the OS says)."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__


class Node:
    """One engine URL and its kept-alive connection."""

    def __init__(self, url: str, context_factory=tls_context) -> None:
        parts = urlsplit(url)
        self.url = url
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.base_path = parts.path.rstrip("/")
        self._context_factory = context_factory
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connect(self, connect_timeout: float, total_timeout: float) -> http.client.HTTPConnection:
        proxy = _proxy_for(self.host) if self.https else None
        try:
            if self.https:
                context = self._context_factory()
                if proxy is None:
                    conn = http.client.HTTPSConnection(self.host, self.port, timeout=connect_timeout, context=context)
                else:
                    conn = self._tunnel(proxy, connect_timeout, context)
            else:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=connect_timeout)
            conn.connect()
        except ssl.SSLCertVerificationError as exc:
            raise Unreachable(f"TLS certificate not trusted: {exc.verify_message}; see VAULT_CACERT") from None
        except (OSError, http.client.HTTPException) as exc:
            raise Unreachable(_reason(exc) + (" through the HTTPS_PROXY" if proxy else "")) from None
        conn.sock.settimeout(total_timeout)
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _tunnel(self, proxy: str, timeout: float, context: ssl.SSLContext) -> http.client.HTTPSConnection:
        parts = urlsplit(proxy)
        try:
            port = parts.port or 8080
        except ValueError:
            port = None
        if not parts.hostname or port is None:
            raise Unreachable("HTTPS_PROXY is not a usable proxy URL")
        headers = {}
        if parts.username is not None:
            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            headers["Proxy-Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
        conn = http.client.HTTPSConnection(parts.hostname, port, timeout=timeout, context=context)
        conn.set_tunnel(self.host, self.port, headers=headers)
        return conn

    def exchange(
        self, method: str, path: str, body: bytes | None, headers: dict, connect_timeout: float, total_timeout: float
    ) -> Answer:
        """Send one request to ``/v1/<path>`` and read the whole answer."""
        target = f"{self.base_path}/v1/{path}"
        for attempt in (1, 2):
            reused = self._conn is not None
            if self._conn is None:
                self._conn = self._connect(connect_timeout, total_timeout)
            else:
                self._conn.sock.settimeout(total_timeout)
            try:
                self._conn.request(method, target, body=body, headers=headers)
                response = self._conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if reused and attempt == 1:
                    continue  # the kept connection had been closed by the node: once more, on a new one
                raise Dropped("the connection dropped") from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise Dropped("timed out" if isinstance(exc, TimeoutError) else type(exc).__name__) from None
            if response.will_close:
                self.close()
            return Answer(response.status, response.headers, data)
        raise Dropped("the connection dropped")  # not reached: the second attempt returns or raises
