"""Small helpers shared by the proxy's connection handlers: limits, socket I/O, heads, hosts."""

from __future__ import annotations

import select
import socket
import ssl
import struct
import time

from authsome.proxy.http1 import END, MAX_HEAD_BYTES, HeadTooLarge  # noqa: F401 - re-exported

READ_SIZE = 64 * 1024
#: Waiting for a client to send a request head (also the keep-alive idle time).
HEAD_TIMEOUT = 60.0
#: Waiting for any progress while a body or a response is being relayed.
IO_TIMEOUT = 900.0
CONNECT_TIMEOUT = 30.0
#: An idle tunnel (blind CONNECT, WebSocket) is closed after this long.
TUNNEL_IDLE_TIMEOUT = 3600.0

# Headers that belong to one hop only and must not be passed on.
HOP_BY_HOP = frozenset({b"proxy-authorization", b"proxy-connection", b"keep-alive", b"proxy-authenticate"})


class PeerClosed(Exception):
    """The other side closed or broke the connection, or stopped making progress."""


def _timeval(seconds: float) -> bytes:
    whole = int(seconds)
    return struct.pack("ll", whole, int((seconds - whole) * 1e6))


def set_timeout(sock, seconds: float, option: int = socket.SO_RCVTIMEO) -> None:
    """Bound each read (or, with SO_SNDTIMEO, each write) on ``sock`` by ``seconds``.

    A plain socket stays blocking and gets the bound from the kernel
    (SO_RCVTIMEO/SO_SNDTIMEO: no extra system call per read, unlike Python's
    socket timeouts, which poll() first); a call that runs out fails with
    EAGAIN, reported as ``PeerClosed``. A TLS socket needs Python's own
    timeout: its blocking read retries after EAGAIN and would never give up.
    The value last set is remembered on the socket (an ``SSLSocket`` has a
    ``__dict__``; a plain socket is set every time).
    """
    if isinstance(sock, ssl.SSLSocket):
        if sock.gettimeout() != seconds:
            sock.settimeout(seconds)
        return
    attribute = "_authsome_rcvtimeo" if option == socket.SO_RCVTIMEO else "_authsome_sndtimeo"
    if getattr(sock, attribute, None) == seconds:
        return
    if sock.gettimeout() is not None:
        sock.settimeout(None)
    sock.setsockopt(socket.SOL_SOCKET, option, _timeval(seconds))
    try:
        setattr(sock, attribute, seconds)
    except AttributeError:
        pass


def recv(sock, timeout: float) -> bytes:
    """Up to READ_SIZE bytes; b"" at end of stream; PeerClosed on error or timeout."""
    try:
        set_timeout(sock, timeout)
        return sock.recv(READ_SIZE)
    except ssl.SSLZeroReturnError:
        return b""
    except (OSError, ssl.SSLError, ValueError) as exc:  # EAGAIN (timeout) is an OSError; ValueError: closed
        raise PeerClosed(type(exc).__name__) from None


def send(sock, data) -> None:
    if not data:
        return
    try:
        set_timeout(sock, IO_TIMEOUT, socket.SO_SNDTIMEO)
        # send() writes it all on a blocking socket in the common case; sendall's loop is the fallback.
        sent = sock.send(data)
        if sent < len(data):
            sock.sendall(memoryview(data)[sent:])
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise PeerClosed(type(exc).__name__) from None


def readable(socks: list, timeout: float) -> list:
    """Those of ``socks`` with something to read, or closed, within ``timeout`` seconds.

    poll(), not select(): a busy proxy can hold descriptors above select's limit of 1024.
    """
    poller = select.poll()
    for sock in socks:
        poller.register(sock, select.POLLIN)
    ready = {fd for fd, _ in poller.poll(int(timeout * 1000))}
    return [sock for sock in socks if sock.fileno() in ready]


def next_event(reader, timeout: float):
    """The next event of an ``http1`` reader, reading from its socket as needed.

    ``timeout`` bounds the whole wait, so a head trickled in byte by byte
    cannot hold a connection open for longer. Raises PeerClosed when the
    stream ends first (an EOF-delimited body ends with ``END``).
    """
    events = reader.events
    if events:
        return events.popleft()
    deadline = time.monotonic() + timeout
    wait = timeout  # the same value every time on the common path: set_timeout then costs nothing
    while not events:
        data = recv(reader.sock, wait)
        if not data:
            end_of_stream = getattr(reader, "end_of_stream", None)
            if end_of_stream is None or not end_of_stream():
                raise PeerClosed("end of stream")
        else:
            reader.feed(data)
        if not events:
            wait = deadline - time.monotonic()
            if wait <= 0:
                raise PeerClosed("timeout")
    return events.popleft()


def response_head(status: int, reason: bytes, headers) -> bytes:
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    lines += [b"%s: %s\r\n" % (name, value) for name, value in headers]
    lines.append(b"\r\n")
    return b"".join(lines)


_REASONS = {
    200: b"Connection established",
    400: b"Bad Request",
    403: b"Forbidden",
    407: b"Proxy Authentication Required",
    413: b"Payload Too Large",
    431: b"Request Header Fields Too Large",
    502: b"Bad Gateway",
}


def simple_response(status: int, message: str, extra_headers: list[tuple[bytes, bytes]] | None = None) -> bytes:
    """A short text response from the proxy itself; the connection closes after it."""
    body = (message + "\n").encode("utf-8")
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *(extra_headers or []),
    ]
    return response_head(status, _REASONS.get(status, b"Error"), headers) + body


def send_simple_response(sock, status: int, message: str, extra_headers=None) -> None:
    """Answer and end the connection; the caller closes the socket after this returns."""
    try:
        send(sock, simple_response(status, message, extra_headers))
    except PeerClosed:
        return
    lingering_close(sock)


def lingering_close(sock, seconds: float = 1.0, limit: int = 1 << 20) -> None:
    """Stop sending, then read and drop what the client is still sending (bounded in time and bytes).

    Closing a socket with unread data makes the kernel reset the connection,
    and a reset can destroy our answer before the client reads it (a 431 to a
    client still sending its huge head, for instance).
    """
    try:
        socket.socket.shutdown(sock, socket.SHUT_WR)
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + seconds
    received = 0
    while received < limit:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        try:
            data = recv(sock, remaining)
        except PeerClosed:
            return
        if not data:
            return
        received += len(data)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b""


LAST_CHUNK = b"0\r\n\r\n"


def split_host_port(authority: str, default_port: int) -> tuple[str, int] | None:
    """``host[:port]`` or ``[v6]:port`` -> (host, port); None when malformed."""
    authority = authority.strip()
    if not authority or any(ch in authority for ch in "/@ \t\\"):
        return None
    if authority.startswith("["):
        end = authority.find("]")
        if end == -1:
            return None
        host, rest = authority[1:end], authority[end + 1 :]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else ""
    else:
        host, _, port_text = authority.partition(":")
        if ":" in port_text:
            return None
    if not host:
        return None
    if port_text == "":
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    return host, int(port_text)


def canonical_host(host: str) -> str:
    """Lower case, no trailing dot: the form hosts are compared in."""
    return host.rstrip(".").lower()


def close(sock) -> None:
    if sock is None:
        return
    try:
        sock.close()
    except OSError:
        pass


def connect(host: str, port: int, timeout: float = CONNECT_TIMEOUT) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def nodelay(sock) -> None:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass  # a Unix socket
