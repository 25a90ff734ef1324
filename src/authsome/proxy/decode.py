"""Decoding compressed response bodies so that scrubbing sees plain text.

The proxy asks matched upstreams for ``Accept-Encoding: identity``. One that
compresses anyway has its body decoded here and relayed uncompressed, so a
secret reflected inside a compressed body is still found by the scrubber.

Contract (used by the relay for responses that carry a body):

- ``decoder_for(headers)`` reads every ``Content-Encoding`` header (a
  comma-separated list, in the order the codings were applied; ``identity``
  is ignored) and returns ``(decoder, relayed_headers)``:

  * ``(None, headers)`` when the body is not encoded: relay it as it is;
  * ``(BodyDecoder, relayed)`` when every coding can be decoded (``gzip``,
    ``x-gzip``, ``deflate`` with or without the zlib header, ``br``, ``zstd``,
    stacked up to ``MAX_LAYERS`` deep such as ``gzip, br``, decoded in
    reverse order). ``relayed`` lacks ``Content-Encoding`` and
    ``Content-Length`` (the decoded length is not known in advance);
  * it raises ``UndecodableBody`` for a coding it cannot decode: an unknown or
    unsupported token, a missing optional library (``brotli`` for br,
    ``zstandard`` for zstd), or too many layers. The body must then not be
    relayed: answer 502 with ``str(exc)`` as the message. ``exc.encoding``
    names the coding (only ever a known token, never text from upstream) and
    ``exc.hint`` says what to install or why.

- ``decoder.feed(data)`` yields decoded pieces of at most ``PIECE`` bytes each,
  producing them lazily: a small compressed bomb never makes one large
  allocation, and a consumer that stops iterating stops the work.
  ``decoder.flush()`` returns what is left at the end of the body (normally
  nothing, as ``feed`` yields everything it can decode). Corrupt data, or data
  after the end of a br/zstd/deflate stream, raises ``BodyDecodeError`` from
  either; a truncated body just ends (nothing undecoded is ever relayed).
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Iterator
from typing import Protocol

#: Largest decoded piece that ``feed`` yields.
PIECE = 256 * 1024
#: Most codings stacked on one body that are decoded (browsers accept few).
MAX_LAYERS = 3
#: RFC 9659: zstd content coding uses windows of at most 8 MiB.
_ZSTD_WINDOW = 8 * 1024 * 1024
#: zstd input is fed this many bytes at a time: a zstd block (>= 4 bytes of
#: input) decodes to at most 128 KiB, so one call returns at most ~640 KiB.
_ZSTD_SLICE = 16
#: Tokens that may be named in an error (anything else is "unrecognised").
_KNOWN_TOKENS = frozenset("gzip x-gzip deflate br zstd compress x-compress exi pack200-gzip aes128gcm dcb dcz".split())


class UndecodableBody(Exception):
    """The body uses a coding that cannot be decoded here, so it cannot be checked for secrets."""

    def __init__(self, encoding: str | None, hint: str, *, layers: int = 0) -> None:
        if layers:
            what = f"body with {layers} stacked encodings"
        elif encoding:
            what = f"{encoding} body"
        else:
            what = "body in an unrecognised encoding"
        super().__init__(f"authsome proxy: the upstream sent a {what} that cannot be checked for secrets")
        self.encoding = encoding
        self.hint = hint


class BodyDecodeError(Exception):
    """The encoded body is corrupt (the message names the coding, never the data)."""


class _Layer(Protocol):
    def feed(self, data: bytes) -> Iterator[bytes]: ...
    def flush(self) -> bytes: ...


def _bounded(data: bytes) -> Iterator[bytes]:
    if len(data) <= PIECE:
        if data:
            yield data
        return
    view = memoryview(data)
    for start in range(0, len(view), PIECE):
        yield bytes(view[start : start + PIECE])


def _looks_like_zlib(head: bytes) -> bool:
    # RFC 1950: method 8 (deflate), window <= 32 KiB, header checksum.
    return head[0] & 0x0F == 8 and head[0] >> 4 <= 7 and (head[0] << 8 | head[1]) % 31 == 0


class _ZlibLayer:
    """gzip (several members allowed) or deflate (zlib-wrapped or raw)."""

    def __init__(self, token: str) -> None:
        self._token = token
        self._gzip = token != "deflate"
        self._head = b""  # deflate: the first bytes, held until the wrapping is known
        self._zobj = zlib.decompressobj(31) if self._gzip else None

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            yield from self._decode(data)
        except zlib.error:
            raise BodyDecodeError(f"corrupt {self._token} body") from None

    def _decode(self, data: bytes) -> Iterator[bytes]:
        if self._zobj is None:
            self._head += data
            if len(self._head) < 2:
                return
            data, self._head = self._head, b""
            self._zobj = zlib.decompressobj(15 if _looks_like_zlib(data) else -15)
        while data or not self._zobj.eof:
            if self._zobj.eof:
                if not self._gzip:
                    raise BodyDecodeError(f"data after the end of the {self._token} body")
                self._zobj = zlib.decompressobj(31)  # the next gzip member
            piece = self._zobj.decompress(data, PIECE)
            data = self._zobj.unconsumed_tail or self._zobj.unused_data
            if piece:
                yield piece
            elif not data:
                return  # all input consumed and nothing pending

    def flush(self) -> bytes:
        if self._zobj is None:
            return b""  # fewer than two bytes: nothing decodable
        try:
            return self._zobj.flush()
        except zlib.error:
            raise BodyDecodeError(f"corrupt {self._token} body") from None


def _import(module: str, token: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UndecodableBody(
            token, f"install the Python package '{module}' to let authsome check such bodies"
        ) from None


class _BrotliLayer:
    def __init__(self) -> None:
        brotli = _import("brotli", "br")
        if not hasattr(brotli.Decompressor, "can_accept_more_data"):
            # Before brotli 1.2 output cannot be bounded: a bomb would be decoded whole.
            raise UndecodableBody("br", "install brotli >= 1.2 (older versions cannot bound the decoded size)")
        self._dobj = brotli.Decompressor()
        self._error = brotli.error

    def feed(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        try:
            if self._dobj.is_finished():
                raise BodyDecodeError("data after the end of the br body")
            # The limit is soft (output may reach about twice it), hence half a piece.
            piece = self._dobj.process(data, output_buffer_limit=PIECE // 2)
            while True:
                yield from _bounded(piece)
                if not piece and self._dobj.can_accept_more_data():
                    return
                piece = self._dobj.process(b"", output_buffer_limit=PIECE // 2)
                if not piece and not self._dobj.can_accept_more_data():
                    raise BodyDecodeError("br decoder made no progress")
        except self._error:
            raise BodyDecodeError("corrupt br body") from None

    def flush(self) -> bytes:
        return b""  # feed drains all output


class _ZstdLayer:
    def __init__(self) -> None:
        zstandard = _import("zstandard", "zstd")
        self._dobj = zstandard.ZstdDecompressor(max_window_size=_ZSTD_WINDOW).decompressobj(read_across_frames=True)
        self._error = zstandard.ZstdError

    def feed(self, data: bytes) -> Iterator[bytes]:
        # zstandard's decompressobj returns all output of its input at once, so
        # input goes in small slices; output is gathered into PIECE-sized pieces.
        view = memoryview(data)
        out = bytearray()
        try:
            for start in range(0, len(view), _ZSTD_SLICE):
                out += self._dobj.decompress(view[start : start + _ZSTD_SLICE])
                while len(out) >= PIECE:
                    yield bytes(out[:PIECE])
                    del out[:PIECE]
        except self._error:
            raise BodyDecodeError("corrupt zstd body") from None
        if out:
            yield bytes(out)

    def flush(self) -> bytes:
        return b""  # decompressobj returns all output of its input


_LAYERS = {"gzip": _ZlibLayer, "x-gzip": _ZlibLayer, "deflate": _ZlibLayer, "br": _BrotliLayer, "zstd": _ZstdLayer}


def _layer(token: str) -> _Layer:
    kind = _LAYERS.get(token)
    if kind is None:
        safe = token if token in _KNOWN_TOKENS else None
        raise UndecodableBody(safe, "authsome decodes only gzip, deflate, br and zstd bodies")
    return kind(token) if kind is _ZlibLayer else kind()


class BodyDecoder:
    """Decodes a body through one or more codings (outermost first)."""

    def __init__(self, layers: list[_Layer]) -> None:
        self._layers = layers

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Decoded pieces of ``data``, each at most ``PIECE`` bytes."""
        return self._through(0, data)

    def _through(self, index: int, data: bytes) -> Iterator[bytes]:
        if index == len(self._layers):
            if data:
                yield data
            return
        for piece in self._layers[index].feed(data):
            yield from self._through(index + 1, piece)

    def flush(self) -> bytes:
        """What is left at the end of the body: each layer's tail goes through the layers inside it."""
        out = bytearray()
        for index, layer in enumerate(self._layers):
            for piece in self._through(index + 1, layer.flush()):
                out += piece
        return bytes(out)


def decoder_for(headers: list[tuple[bytes, bytes]]) -> tuple[BodyDecoder | None, list[tuple[bytes, bytes]]]:
    """A decoder for an encoded body and the headers to relay with the decoded body.

    Raises ``UndecodableBody`` when the body's coding cannot be decoded.
    """
    tokens: list[str] = []
    for name, value in headers:
        if name.lower() == b"content-encoding":
            tokens += [t.strip().lower().decode("latin-1") for t in value.split(b",")]
    tokens = [t for t in tokens if t and t != "identity"]
    if not tokens:
        return None, headers
    if len(tokens) > MAX_LAYERS:
        raise UndecodableBody(None, f"authsome decodes at most {MAX_LAYERS} stacked encodings", layers=len(tokens))
    layers = [_layer(token) for token in reversed(tokens)]
    relayed = [(k, v) for k, v in headers if k.lower() not in (b"content-encoding", b"content-length")]
    return BodyDecoder(layers), relayed
