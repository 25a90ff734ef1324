"""Per-frame scrubbing of server WebSocket frames."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from authsome.proxy.scrub import Scrubber, secret_patterns
from authsome.proxy.ws_scrub import WebSocketScrubber

SECRET = "sk-test-0123456789abcdef"


def frame(payload: bytes, opcode: int = 1, mask: bytes | None = None) -> bytes:
    n = len(payload)
    length = (
        bytes([n])
        if n < 126
        else bytes([126]) + struct.pack(">H", n)
        if n < 65536
        else bytes([127]) + struct.pack(">Q", n)
    )
    if mask:
        length = bytes([length[0] | 0x80]) + length[1:]
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return bytes([0x80 | opcode]) + length + mask + payload
    return bytes([0x80 | opcode]) + length + payload


@settings(max_examples=100, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8), pad=st.integers(0, 300))
def test_frames_are_scrubbed_whatever_the_read_boundaries(cuts, pad):
    stream = frame(b"x" * pad + f"key={SECRET}".encode()) + frame(b"ok") + frame(SECRET.encode() * 2, opcode=2)
    points = sorted({c for c in cuts if c < len(stream)} | {0, len(stream)})
    ws = WebSocketScrubber(Scrubber(secret_patterns([SECRET])))
    out = b"".join(ws.feed(stream[a:b]) for a, b in zip(points, points[1:], strict=False))
    assert len(out) == len(stream)
    assert SECRET.encode() not in out
    assert out.count(b"[authsome-redacted]") == 3
    assert frame(b"ok") in out  # frame headers and clean frames untouched


def test_masked_frames_pass_unchanged():
    data = frame(SECRET.encode(), mask=b"\x01\x02\x03\x04")
    assert WebSocketScrubber(Scrubber(secret_patterns([SECRET]))).feed(data) == data
