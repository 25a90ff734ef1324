"""gzip/deflate bodies are decoded in bounded pieces for scrubbing."""

from __future__ import annotations

import gzip
import zlib

from authsome.proxy.decode import decoder_for


def decode_all(encoding: bytes, payload: bytes, step: int = 7) -> bytes:
    decoder, headers = decoder_for([(b"Content-Encoding", encoding), (b"Content-Length", b"9"), (b"X", b"y")])
    assert headers == [(b"X", b"y")]
    out = b"".join(piece for i in range(0, len(payload), step) for piece in decoder.feed(payload[i : i + step]))
    return out + decoder.flush()


def test_gzip_zlib_and_raw_deflate():
    data = b"secret sk-abcdefghijkl " * 1000
    assert decode_all(b"gzip", gzip.compress(data)) == data
    assert decode_all(b"deflate", zlib.compress(data)) == data
    raw = zlib.compressobj(wbits=-15)
    assert decode_all(b"deflate", raw.compress(data) + raw.flush()) == data


def test_bomb_comes_out_in_bounded_pieces():
    decoder, _ = decoder_for([(b"content-encoding", b"gzip")])
    bomb = gzip.compress(b"\0" * 20_000_000)
    assert max(len(piece) for piece in decoder.feed(bomb)) <= 256 * 1024


def test_other_or_multiple_encodings_pass_through():
    headers = [(b"content-encoding", b"br")]
    assert decoder_for(headers) == (None, headers)
    headers = [(b"content-encoding", b"gzip"), (b"content-encoding", b"gzip")]
    assert decoder_for(headers)[0] is None
