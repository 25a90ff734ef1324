"""Decoding gzip/deflate response bodies so that scrubbing sees plain text.

The proxy asks matched upstreams for ``Accept-Encoding: identity``; one that
compresses anyway gets its gzip or deflate body decoded here and relayed
uncompressed (without ``Content-Encoding`` and ``Content-Length``). Output is
produced in bounded pieces, so a small compressed bomb cannot make one huge
allocation. Other encodings (br, zstd) pass through unchanged.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

_PIECE = 256 * 1024
_WBITS = {b"gzip": 31, b"x-gzip": 31, b"deflate": 15}


class BodyDecoder:
    def __init__(self, encoding: bytes) -> None:
        self._encoding = encoding
        self._raw_deflate_tried = False
        self._decoder = zlib.decompressobj(_WBITS[encoding])

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            yield from self._pieces(data)
        except zlib.error:
            # "deflate" is sometimes sent without the zlib header (raw deflate).
            if self._encoding != b"deflate" or self._raw_deflate_tried:
                raise
            self._raw_deflate_tried = True
            self._decoder = zlib.decompressobj(-15)
            yield from self._pieces(data)

    def _pieces(self, data: bytes) -> Iterator[bytes]:
        piece = self._decoder.decompress(data, _PIECE)
        while piece:
            yield piece
            piece = self._decoder.decompress(self._decoder.unconsumed_tail, _PIECE)

    def flush(self) -> bytes:
        return self._decoder.flush()


def decoder_for(headers: list[tuple[bytes, bytes]]) -> tuple[BodyDecoder | None, list[tuple[bytes, bytes]]]:
    """A decoder for a gzip/deflate body, and the headers to relay with the decoded body."""
    encodings = [v.strip().lower() for k, v in headers if k.lower() == b"content-encoding"]
    if len(encodings) != 1 or encodings[0] not in _WBITS:
        return None, headers
    relayed = [(k, v) for k, v in headers if k.lower() not in (b"content-encoding", b"content-length")]
    return BodyDecoder(encodings[0]), relayed
