"""Scrubbing secrets from WebSocket frames sent by the server.

Server frames are unmasked, so a secret in a text or binary payload can be
overwritten in place with a same-length marker without touching the frame
headers. Scrubbing works per frame (a partial match is held back only until
its frame ends). Compressed frames cannot be scrubbed, which is why the relay
does not let the client offer ``permessage-deflate`` to a matched upstream.
"""

from __future__ import annotations

from authsome.proxy.scrub import Scrubber, StreamScrubber


class WebSocketScrubber:
    """Feed the server-to-client byte stream; get back the same bytes with secrets overwritten."""

    def __init__(self, scrubber: Scrubber) -> None:
        self._scrubber = scrubber
        self._header = bytearray()
        self._remaining = 0
        self._payload: StreamScrubber | None = None
        self._in_payload = False

    def _header_length(self) -> int | None:
        if len(self._header) < 2:
            return None
        length_code = self._header[1] & 0x7F
        extra = 2 if length_code == 126 else 8 if length_code == 127 else 0
        return 2 + extra + (4 if self._header[1] & 0x80 else 0)

    def _start_payload(self) -> None:
        header = self._header
        length_code = header[1] & 0x7F
        if length_code == 126:
            length = int.from_bytes(header[2:4], "big")
        elif length_code == 127:
            length = int.from_bytes(header[2:10], "big")
        else:
            length = length_code
        masked, compressed = header[1] & 0x80, header[0] & 0x40
        self._remaining = length
        self._payload = None if (masked or compressed) else self._scrubber.stream()
        self._in_payload = length > 0

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        i = 0
        while i < len(data):
            if not self._in_payload:
                self._header.append(data[i])
                i += 1
                needed = self._header_length()
                if needed is not None and len(self._header) == needed:
                    out += self._header
                    self._start_payload()
                    self._header = bytearray()
                continue
            take = min(self._remaining, len(data) - i)
            chunk = data[i : i + take]
            i += take
            self._remaining -= take
            out += self._payload.feed(chunk) if self._payload else chunk
            if self._remaining == 0:
                if self._payload:
                    out += self._payload.flush()
                self._payload = None
                self._in_payload = False
        return bytes(out)
