"""A stand-in provider API over HTTPS (and plain HTTP) for the proxy e2e tests.

Serves every test host name from one certificate of the test CA, and records
for each request the TLS SNI, the Host header, the credential headers, the
method and the path (JSON lines). Streamed responses stamp each chunk with its
send time so a test can compare arrival gaps to send gaps.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
import ssl
import struct
import threading
import time

import h11

CHUNK_GAP = 0.5
CHUNKS = 4


class Upstream:
    def __init__(self, cert_file: str, key_file: str, records_path: str) -> None:
        self.records_path = records_path
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert_file, key_file)
        self.ctx.set_alpn_protocols(["http/1.1"])
        self.ctx.sni_callback = self._sni

    @staticmethod
    def _sni(ssl_object, server_name, _ctx):
        ssl_object.test_sni = server_name

    async def start(self, https_port: int = 443, http_port: int = 80) -> None:
        self.servers = [
            await asyncio.start_server(self._on_tls, "127.0.0.1", https_port, ssl=self.ctx),
            await asyncio.start_server(self._on_plain, "127.0.0.1", http_port),
        ]

    async def _on_tls(self, reader, writer):
        sni = getattr(writer.get_extra_info("ssl_object"), "test_sni", None)
        await self._serve(reader, writer, "https", sni)

    async def _on_plain(self, reader, writer):
        await self._serve(reader, writer, "http", None)

    def record(self, entry: dict) -> None:
        with open(self.records_path, "a") as f:
            f.write(json.dumps(entry) + "\n")

    async def _serve(self, reader, writer, scheme, sni):
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = await self._next(conn, reader)
                if not isinstance(event, h11.Request):
                    return
                body = b""
                data_times: list[float] = []
                expected_continue = conn.client_is_waiting_for_100_continue
                if expected_continue:
                    await self._send(conn, writer, h11.InformationalResponse(status_code=100, headers=[]))
                while True:
                    part = await self._next(conn, reader)
                    if isinstance(part, h11.Data):
                        body += part.data
                        data_times.append(time.time())
                    elif isinstance(part, h11.EndOfMessage):
                        break
                    else:
                        return
                headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
                self.record(
                    {
                        "scheme": scheme,
                        "sni": sni,
                        "host": headers.get("host"),
                        "method": event.method.decode(),
                        "target": event.target.decode(),
                        "authorization": headers.get("authorization"),
                        "x-api-key": headers.get("x-api-key"),
                        "accept-encoding": headers.get("accept-encoding"),
                        "body_length": len(body),
                        "data_times": data_times,
                        "expected_continue": expected_continue,
                        "ws_extensions": headers.get("sec-websocket-extensions"),
                    }
                )
                if headers.get("upgrade", "").lower() == "websocket":
                    await self._websocket(conn, reader, writer, headers)
                    return
                await self._respond(conn, writer, event, headers, body)
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError, OSError):
            return
        finally:
            writer.close()

    async def _websocket(self, conn, reader, writer, headers):
        """Echo server: answers each text message with the credential it received and the message."""
        accept = base64.b64encode(
            hashlib.sha1((headers["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
        )
        response = [("upgrade", "websocket"), ("connection", "Upgrade"), ("sec-websocket-accept", accept)]
        await self._send(conn, writer, h11.InformationalResponse(status_code=101, headers=response))
        pending = bytearray(conn.trailing_data[0])
        auth = headers.get("authorization") or ""
        while True:
            while (frame := _parse_frame(pending)) is None:
                data = await reader.read(65536)
                if not data:
                    return
                pending += data
            opcode, payload, used = frame
            del pending[:used]
            if opcode == 8:
                writer.write(bytes([0x88, 0]))
                await writer.drain()
                return
            if opcode == 1:
                reply = f"auth={auth}|{payload.decode()}".encode()
                writer.write(bytes([0x81]) + _length_bytes(len(reply)) + reply)
                await writer.drain()

    async def _next(self, conn, reader):
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            conn.receive_data(await reader.read(65536))

    async def _send(self, conn, writer, event):
        writer.write(conn.send(event))
        await writer.drain()

    async def _json(self, conn, writer, status, payload, extra=()):
        body = json.dumps(payload).encode()
        headers = [("content-type", "application/json"), ("content-length", str(len(body))), *extra]
        await self._send(conn, writer, h11.Response(status_code=status, headers=headers))
        await self._send(conn, writer, h11.Data(data=body))
        await self._send(conn, writer, h11.EndOfMessage())

    async def _respond(self, conn, writer, request, headers, body):
        path = request.target.decode().split("?", 1)[0]
        wants_stream = b'"stream": true' in body or b'"stream":true' in body
        if path == "/v1/models" and headers.get("host", "").startswith("api.anthropic.com"):
            model = {
                "id": "claude-test",
                "type": "model",
                "display_name": "Claude",
                "created_at": "2025-01-01T00:00:00Z",
            }
            page = {"data": [model], "has_more": False, "first_id": "claude-test", "last_id": "claude-test"}
            await self._json(conn, writer, 200, page)
        elif path == "/v1/models":
            models = {"object": "list", "data": [{"id": "gpt-test", "object": "model", "created": 0, "owned_by": "t"}]}
            await self._json(conn, writer, 200, models)
        elif path == "/echo":
            # Reflects the credential, as a careless API or an error page might.
            auth = headers.get("authorization") or headers.get("x-api-key") or ""
            await self._json(
                conn, writer, 200, {"headers": headers, "target": request.target.decode()}, [("x-echo-auth", auth)]
            )
        elif path in ("/gzip-echo", "/br-echo", "/gzip-br-echo", "/compress-echo"):
            # Compresses even though the proxy asked for identity: the proxy must decode to scrub.
            auth = headers.get("authorization") or ""
            body = json.dumps({"echo": auth, "pad": "y" * 100_000}).encode()
            encoding = {"/gzip-echo": "gzip", "/br-echo": "br", "/gzip-br-echo": "gzip, br"}.get(path, "compress")
            if "gzip" in encoding:
                body = gzip.compress(body)
            if "br" in encoding:
                import brotli

                body = brotli.compress(body)
            head = [
                ("content-type", "application/json"),
                ("content-encoding", encoding),
                ("content-length", str(len(body))),
            ]
            await self._send(conn, writer, h11.Response(status_code=200, headers=head))
            for i in range(0, len(body), 100):  # small pieces: the secret straddles reads
                await self._send(conn, writer, h11.Data(data=body[i : i + 100]))
            await self._send(conn, writer, h11.EndOfMessage())
        elif path == "/redirect":
            await self._json(conn, writer, 302, {}, [("location", "https://evil-api.openai.com/capture")])
        elif path == "/stream" or (wants_stream and path in ("/v1/chat/completions", "/v1/messages")):
            await self._stream(conn, writer, path)
        elif path == "/v1/chat/completions":
            completion = {
                "id": "c1",
                "object": "chat.completion",
                "created": 0,
                "model": "gpt-test",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
            }
            await self._json(conn, writer, 200, completion)
        else:
            await self._json(conn, writer, 200, {"ok": True, "path": path})

    async def _stream(self, conn, writer, path):
        sse = path != "/stream"
        content_type = "text/event-stream" if sse else "text/plain"
        await self._send(conn, writer, h11.Response(status_code=200, headers=[("content-type", content_type)]))
        events = _anthropic_events if path == "/v1/messages" else _openai_events if sse else _plain_events
        for i, data in enumerate(events()):
            if i:
                await asyncio.sleep(CHUNK_GAP)
            await self._send(conn, writer, h11.Data(data=data(time.time()).encode()))
        await self._send(conn, writer, h11.EndOfMessage())


def _parse_frame(buf: bytearray):
    """(opcode, unmasked payload, bytes used) of the first complete frame in buf, or None."""
    if len(buf) < 2:
        return None
    opcode, masked, length = buf[0] & 0x0F, buf[1] & 0x80, buf[1] & 0x7F
    pos = 2
    if length == 126:
        if len(buf) < 4:
            return None
        length, pos = struct.unpack(">H", buf[2:4])[0], 4
    elif length == 127:
        if len(buf) < 10:
            return None
        length, pos = struct.unpack(">Q", buf[2:10])[0], 10
    mask = b""
    if masked:
        mask, pos = bytes(buf[pos : pos + 4]), pos + 4
    if len(buf) < pos + length:
        return None
    payload = bytes(buf[pos : pos + length])
    if masked:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return opcode, payload, pos + length


def _length_bytes(n: int) -> bytes:
    if n < 126:
        return bytes([n])
    if n < 65536:
        return bytes([126]) + struct.pack(">H", n)
    return bytes([127]) + struct.pack(">Q", n)


def _plain_events():
    return [lambda t, i=i: f"chunk {i} sent {t:.6f}\n" for i in range(CHUNKS)]


def _openai_events():
    def chunk(i, t):
        payload = {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "gpt-test",
            "choices": [{"index": 0, "delta": {"content": f"{t:.6f} "}, "finish_reason": None}],
        }
        return f"data: {json.dumps(payload)}\n\n"

    events = [lambda t, i=i: chunk(i, t) for i in range(CHUNKS)]
    return events + [lambda t: "data: [DONE]\n\n"]


def _anthropic_events():
    def ev(name, payload):
        return f"event: {name}\ndata: {json.dumps(payload)}\n\n"

    start = {
        "type": "message_start",
        "message": {
            "id": "m1",
            "type": "message",
            "role": "assistant",
            "model": "claude-test",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 0},
        },
    }
    first = [
        lambda t: (
            ev("message_start", start)
            + ev(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            )
        )
    ]
    deltas = [
        lambda t: ev(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f"{t:.6f} "}},
        )
        for _ in range(CHUNKS)
    ]
    last = [
        lambda t: (
            ev("content_block_stop", {"type": "content_block_stop", "index": 0})
            + ev(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": 4},
                },
            )
            + ev("message_stop", {"type": "message_stop"})
        )
    ]
    return first + deltas + last


def start_in_thread(config: dict) -> None:
    """Serve an ``Upstream`` from the driver config on its own event loop in a daemon thread."""
    ready = threading.Event()

    def serve() -> None:
        loop = asyncio.new_event_loop()
        upstream = Upstream(config["upstream_cert"], config["upstream_key"], config["records"])
        loop.run_until_complete(upstream.start())
        ready.set()
        loop.run_forever()

    threading.Thread(target=serve, daemon=True).start()
    if not ready.wait(10):
        raise SystemExit("upstream did not start")
