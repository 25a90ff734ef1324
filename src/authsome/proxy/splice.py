"""Relaying bytes both ways between two sockets (blind tunnels, WebSockets) in one thread.

One thread and non-blocking sockets, not a thread per direction: an
``ssl.SSLSocket`` must not be read and written from two threads at once
(OpenSSL's objects are not thread-safe). Each direction has a bounded
buffer; a side is not read while its peer's buffer is full, so a fast sender
cannot grow memory without bound.
"""

from __future__ import annotations

import select
import socket
import ssl
import time

from authsome.proxy.wire import READ_SIZE, TUNNEL_IDLE_TIMEOUT

_BUFFER_LIMIT = 4 * READ_SIZE
_WANT = (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError)


class _Side:
    __slots__ = ("sock", "out", "eof", "shut", "transform", "tls")

    def __init__(self, sock, transform) -> None:
        self.sock = sock
        self.out = bytearray()  # bytes waiting to be written to this side
        self.eof = False  # this side sent end of stream
        self.shut = False  # we half-closed our writing to this side
        self.transform = transform  # applied to what this side sends
        self.tls = isinstance(sock, ssl.SSLSocket)


def splice(a, b, b_to_a=None, to_a: bytes = b"", to_b: bytes = b"", idle_timeout: float = TUNNEL_IDLE_TIMEOUT) -> None:
    """Relay until both directions end, one ends where no half-close is possible, or ``idle_timeout``.

    ``b_to_a`` transforms what b sends (scrubbing WebSocket frames);
    ``to_a``/``to_b`` are bytes already read that must go out first.
    """
    sa, sb = _Side(a, None), _Side(b, b_to_a)
    sa.out += to_a
    sb.out += to_b
    peers = {id(sa): sb, id(sb): sa}
    for side in (sa, sb):
        side.sock.settimeout(0)
    fds = {a.fileno(): sa, b.fileno(): sb}
    last_progress = time.monotonic()
    try:
        while True:
            progressed = False
            for side in (sa, sb):
                peer = peers[id(side)]
                if not side.eof and len(peer.out) < _BUFFER_LIMIT:
                    progressed |= _read(side, peer)
                if side.out:
                    progressed |= _write(side)
                if peer.eof and not side.out and not side.shut:
                    if side.tls or peer.tls:
                        return  # TLS has no half-close: one direction ending ends the relay
                    try:
                        side.sock.shutdown(socket.SHUT_WR)
                    except OSError:
                        return
                    side.shut = True
            if sa.eof and sb.eof and not sa.out and not sb.out:
                return
            now = time.monotonic()
            if progressed:
                last_progress = now
                continue  # SSL may hold decrypted bytes that poll cannot see: read again first
            if now - last_progress > idle_timeout:
                return
            poller = select.poll()  # fresh each time: a side with nothing to wait for is left out
            for fd, side in fds.items():
                peer = peers[id(side)]
                mask = 0
                if not side.eof and len(peer.out) < _BUFFER_LIMIT:
                    mask |= select.POLLIN
                if side.out:
                    mask |= select.POLLOUT
                if mask:
                    poller.register(fd, mask)
            wait = max(0.0, idle_timeout - (now - last_progress))
            poller.poll(min(wait, 60.0) * 1000)
    except _Broken:
        return


class _Broken(Exception):
    pass


def _read(side: _Side, peer: _Side) -> bool:
    try:
        data = side.sock.recv(READ_SIZE)
    except _WANT:
        return False
    except ssl.SSLZeroReturnError:
        data = b""
    except (OSError, ssl.SSLError, ValueError):
        raise _Broken() from None
    if not data:
        side.eof = True
        return True
    if side.transform is not None:
        data = side.transform(data)
    peer.out += data
    return True


def _write(side: _Side) -> bool:
    try:
        sent = side.sock.send(side.out)
    except _WANT:
        return False
    except (OSError, ssl.SSLError, ValueError):
        raise _Broken() from None
    del side.out[:sent]
    return sent > 0
