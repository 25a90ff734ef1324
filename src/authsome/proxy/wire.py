"""Small helpers shared by the proxy's connection handlers: h11 I/O, limits, headers."""

from __future__ import annotations

import asyncio

import h11

#: Largest request or response head (request line + headers) accepted.
MAX_HEAD_BYTES = 64 * 1024
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
    """The other side closed or broke the connection."""


def new_server_conn() -> h11.Connection:
    return h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)


def new_client_conn() -> h11.Connection:
    return h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)


async def next_event(conn: h11.Connection, reader: asyncio.StreamReader, timeout: float):
    """The next h11 event, reading from ``reader`` as needed.

    ``timeout`` bounds the whole wait for the event, so a head trickled in byte
    by byte cannot hold a connection open for longer.
    """
    event = conn.next_event()
    if event is not h11.NEED_DATA:
        return event
    async with asyncio.timeout(timeout):
        while True:
            try:
                data = await reader.read(READ_SIZE)
            except (ConnectionError, OSError) as exc:
                raise PeerClosed(str(exc)) from None
            conn.receive_data(data)
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event


async def send(conn: h11.Connection, writer: asyncio.StreamWriter, event) -> None:
    data = conn.send(event)
    if data:
        writer.write(data)
        try:
            async with asyncio.timeout(IO_TIMEOUT):
                await writer.drain()
        except (ConnectionError, OSError) as exc:
            raise PeerClosed(str(exc)) from None


async def send_simple_response(
    conn: h11.Connection,
    writer: asyncio.StreamWriter,
    status: int,
    message: str,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """A short text response from the proxy itself, then the connection closes."""
    body = (message + "\n").encode("utf-8")
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *(extra_headers or []),
    ]
    try:
        await send(conn, writer, h11.Response(status_code=status, headers=headers))
        await send(conn, writer, h11.Data(data=body))
        await send(conn, writer, h11.EndOfMessage())
    except (h11.LocalProtocolError, PeerClosed, TimeoutError):
        pass


def header_value(headers, name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


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


async def close_writer(writer: asyncio.StreamWriter | None) -> None:
    if writer is None:
        return
    try:
        writer.close()
        async with asyncio.timeout(5):
            await writer.wait_closed()
    except Exception:  # noqa: BLE001, S110 - closing must never raise
        pass


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, transform=None) -> bool:
    """Copy bytes (through ``transform`` if given) until EOF; True when the other side was half-closed."""
    try:
        while True:
            async with asyncio.timeout(TUNNEL_IDLE_TIMEOUT):
                data = await reader.read(READ_SIZE)
            if not data:
                break
            if transform is not None:
                data = transform(data)
            writer.write(data)
            async with asyncio.timeout(IO_TIMEOUT):
                await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
            return True
    except (ConnectionError, OSError, TimeoutError):
        pass
    return False


async def splice(
    a_reader: asyncio.StreamReader,
    a_writer: asyncio.StreamWriter,
    b_reader: asyncio.StreamReader,
    b_writer: asyncio.StreamWriter,
    b_to_a=None,
) -> None:
    """Relay both ways until both directions end, or one ends where no half-close is possible.

    ``b_to_a`` optionally transforms the bytes going from b to a.
    """
    tasks = {
        asyncio.ensure_future(pipe(a_reader, b_writer)),
        asyncio.ensure_future(pipe(b_reader, a_writer, b_to_a)),
    }
    try:
        while tasks:
            done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if any(not task.result() for task in done):
                break
    finally:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
