"""Compressed response bodies are decoded in bounded pieces, so scrubbing sees plain text."""

from __future__ import annotations

import gzip
import itertools
import sys
import tracemalloc
import zlib

import brotli
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from authsome.proxy.decode import PIECE, BodyDecodeError, UndecodableBody, decoder_for
from authsome.proxy.scrub import Scrubber, secret_patterns

SECRET = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"


def raw_deflate(data: bytes) -> bytes:
    obj = zlib.compressobj(wbits=-15)
    return obj.compress(data) + obj.flush()


ENCODERS = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}


def encode(encoding: str, data: bytes) -> bytes:
    """``data`` with the codings of a Content-Encoding value applied in order."""
    for token in encoding.split(","):
        data = ENCODERS[token.strip()](data)
    return data


def headers_for(encoding: str) -> list[tuple[bytes, bytes]]:
    return [(b"Content-Encoding", encoding.encode()), (b"Content-Length", b"9"), (b"X", b"y")]


def decode_all(encoding: str, payload: bytes, step: int = 7) -> bytes:
    decoder, headers = decoder_for(headers_for(encoding))
    assert headers == [(b"X", b"y")]
    pieces = [piece for i in range(0, len(payload), step) for piece in decoder.feed(payload[i : i + step])]
    assert all(0 < len(piece) <= PIECE for piece in pieces)
    return b"".join(pieces) + decoder.flush()


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
@pytest.mark.parametrize("step", [1, 7, 4096, 1 << 30])
def test_round_trip(encoding, step):
    data = b"".join(b"line %d secret %s\n" % (i, SECRET.encode()) for i in range(3000))
    payload = encode(encoding, data)
    if step == 1:
        payload, data = encode(encoding, data[:3000]), data[:3000]  # byte by byte: keep it short
    assert decode_all(encoding, payload, step) == data


def test_raw_deflate_without_zlib_header():
    data = b"secret sk-abcdefghijkl " * 1000
    for step in (1, 2, 3, 1000):
        assert decode_all("deflate", raw_deflate(data), step) == data


def test_gzip_with_several_members():
    assert decode_all("gzip", gzip.compress(b"first ") + gzip.compress(b"second"), 5) == b"first second"


def decoded_pieces(encoding: str, payload: bytes) -> list[bytes]:
    decoder, _ = decoder_for(headers_for(encoding))
    return [*decoder.feed(payload), decoder.flush()]


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip", "gzip, br"])
def test_secret_split_across_pieces_is_still_scrubbed(encoding):
    filler = b"a" * (4 * PIECE)
    first = len(decoded_pieces(encoding, encode(encoding, filler))[0])
    data = filler[: first - 10] + SECRET.encode() + filler
    pieces = decoded_pieces(encoding, encode(encoding, data))
    assert b"".join(pieces) == data
    assert not any(SECRET.encode() in piece for piece in pieces)  # it straddles two pieces
    stream = Scrubber(secret_patterns([SECRET])).stream()
    scrubbed = b"".join(stream.feed(piece) for piece in pieces) + stream.flush()
    assert SECRET.encode() not in scrubbed
    assert len(scrubbed) == len(data) and b"[authsome-redacted]" in scrubbed


@pytest.mark.parametrize("encoding", ["gzip, br", "br, gzip", "deflate, zstd", "zstd,br", "gzip, zstd, br"])
def test_stacked_encodings_are_decoded_in_reverse_order(encoding):
    data = b"stacked " + SECRET.encode() + b" body " * 5000
    assert decode_all(encoding, encode(encoding, data), 333) == data


def test_stacked_encodings_over_several_header_lines():
    data = b"two header lines " * 100
    payload = zstandard.ZstdCompressor().compress(gzip.compress(data))
    headers = [(b"content-encoding", b"gzip"), (b"Content-Type", b"text/plain"), (b"CONTENT-ENCODING", b" ZSTD ")]
    decoder, relayed = decoder_for(headers)
    assert relayed == [(b"Content-Type", b"text/plain")]
    assert b"".join(decoder.feed(payload)) + decoder.flush() == data


def test_identity_is_ignored():
    assert decode_all("identity, gzip, identity", gzip.compress(b"x" * 100)) == b"x" * 100
    for headers in ([(b"content-encoding", b"identity")], [(b"content-type", b"text/plain")], []):
        assert decoder_for(headers) == (None, headers)


def test_empty_encoded_body_is_fine():
    # A 204 or an empty 200 may still name a coding.
    for encoding in ENCODERS:
        decoder, _ = decoder_for(headers_for(encoding))
        assert list(decoder.feed(b"")) == [] and decoder.flush() == b""


def zero_bomb(encoding: str, size: int) -> bytes:
    compressor = {
        "gzip": lambda: zlib.compressobj(1, zlib.DEFLATED, 31),
        "br": lambda: brotli.Compressor(quality=5),
        "zstd": lambda: zstandard.ZstdCompressor(level=3).compressobj(),
    }[encoding]()
    step = getattr(compressor, "compress", None) or compressor.process
    end = getattr(compressor, "flush", None) or compressor.finish
    zeros = bytes(1 << 20)
    return b"".join(step(zeros) for _ in range(size >> 20)) + end()


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    # 1 GiB of zeros for br and zstd, 256 MiB for gzip (deflate's ratio caps near 1000:1).
    return {"br": zero_bomb("br", 1 << 30), "zstd": zero_bomb("zstd", 1 << 30), "gzip": zero_bomb("gzip", 1 << 28)}


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip", "gzip, br"])
def test_bomb_comes_out_in_bounded_pieces_and_can_be_abandoned(encoding, bombs):
    if encoding == "gzip, br":
        payload = brotli.compress(bombs["gzip"], quality=1)
    else:
        payload = bombs[encoding]
    decoder, _ = decoder_for(headers_for(encoding))
    tracemalloc.start()
    try:
        pieces = list(itertools.islice(decoder.feed(payload), 8))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(pieces) == 8
    assert all(0 < len(piece) <= PIECE for piece in pieces)
    assert set(b"".join(pieces)) == {0}
    # Nothing near the decoded size (256 MiB to 1 GiB) was ever held. tracemalloc counts every thread
    # of the process (the leak scanner samples /proc in the background), so the bound leaves room for that.
    assert peak < 64 * 1024 * 1024


@pytest.mark.parametrize(
    ("encoding", "payload"),
    [
        pytest.param("gzip", b"\x1f\x8b\x08\x00garbage-garbage-garbage", id="gzip-garbage"),
        pytest.param("gzip", gzip.compress(b"x" * 100, mtime=0)[:-8] + b"\xff" * 8, id="gzip-bad-crc"),
        pytest.param("deflate", b"not deflate at all, \xff\xff\xff\xff\xff\xff", id="deflate-garbage"),
        pytest.param("br", b"\xff" * 64, id="br-garbage"),
        pytest.param("zstd", b"\x28\xb5\x2f\xfd" + b"\xff" * 64, id="zstd-bad-frame"),
        pytest.param("zstd", b"definitely not zstd", id="zstd-garbage"),
        pytest.param("br", brotli.compress(b"done") + b"trailing", id="br-trailing-data"),
        pytest.param("zstd", zstandard.ZstdCompressor().compress(b"done") + b"trailing junk", id="zstd-trailing-data"),
        pytest.param("gzip, br", brotli.compress(b"a br body holding no gzip"), id="stacked-inner-corrupt"),
    ],
)
def test_corrupt_data_raises_a_clean_error(encoding, payload):
    decoder, _ = decoder_for(headers_for(encoding))
    with pytest.raises(BodyDecodeError) as caught:
        for i in range(0, len(payload), 5):
            list(decoder.feed(payload[i : i + 5]))
        decoder.flush()
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert "garbage" not in str(caught.value) and "trailing" not in str(caught.value)


@pytest.mark.parametrize("token", [b"compress", b"x-compress", b"aes128gcm", b"dcb"])
def test_known_but_unsupported_encoding_is_flagged(token):
    with pytest.raises(UndecodableBody) as caught:
        decoder_for([(b"Content-Encoding", token)])
    assert caught.value.encoding == token.decode()
    assert str(caught.value) == (
        f"authsome proxy: the upstream sent a {token.decode()} body that cannot be checked for secrets"
    )


def test_unknown_encoding_is_flagged_without_echoing_it():
    # The token comes from the upstream: it could reflect the secret, so it is never repeated.
    with pytest.raises(UndecodableBody) as caught:
        decoder_for([(b"Content-Encoding", b"gzip, " + SECRET.encode())])
    assert caught.value.encoding is None
    assert SECRET not in str(caught.value) and SECRET not in caught.value.hint
    assert "cannot be checked for secrets" in str(caught.value)


def test_too_many_layers_are_flagged():
    with pytest.raises(UndecodableBody) as caught:
        decoder_for([(b"Content-Encoding", b"gzip, gzip, gzip, gzip")])
    assert "4 stacked encodings" in str(caught.value)


@pytest.mark.parametrize(("token", "module"), [("br", "brotli"), ("zstd", "zstandard")])
def test_missing_library_is_flagged(token, module, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail as if not installed
    with pytest.raises(UndecodableBody) as caught:
        decoder_for([(b"Content-Encoding", b"gzip, " + token.encode())])
    assert caught.value.encoding == token
    assert module in caught.value.hint
    assert str(caught.value) == f"authsome proxy: the upstream sent a {token} body that cannot be checked for secrets"


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=3000),
    encoding=st.sampled_from(["gzip", "deflate", "br", "zstd", "gzip, br", "zstd, deflate"]),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=8),
)
def test_any_split_of_the_input_decodes_the_same(data, encoding, cuts):
    payload = encode(encoding, data)
    bounds = [0, *sorted(c for c in cuts if c <= len(payload)), len(payload)]
    decoder, _ = decoder_for(headers_for(encoding))
    out = b"".join(piece for a, b in itertools.pairwise(bounds) for piece in decoder.feed(payload[a:b]))
    assert out + decoder.flush() == data
