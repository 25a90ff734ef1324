"""A tiny, strict DER encoder: just the ASN.1 types an X.509 certificate needs.

Every function returns one complete encoding (tag, length, contents) as
``bytes``; constructed types take already-encoded children, so a structure is
written as nested calls that mirror its ASN.1 definition. Only the
distinguished encoding is produced (minimal lengths and integers, DEFAULT
values left to the caller to omit, SET OF sorted), and values the encoding
cannot represent are refused with ``ValueError`` instead of being mangled.

Why not a library: see the docstring of ``authsome.proxy.ca``.
"""

from __future__ import annotations

import time

# Universal tags (X.680 section 8.4); constructed types carry the 0x20 bit.
_BOOLEAN = 0x01
_INTEGER = 0x02
_BIT_STRING = 0x03
_OCTET_STRING = 0x04
_OID = 0x06
_UTF8_STRING = 0x0C
_PRINTABLE_STRING = 0x13
_IA5_STRING = 0x16
_UTC_TIME = 0x17
_GENERALIZED_TIME = 0x18
_SEQUENCE = 0x30
_SET = 0x31

_CONTEXT = 0x80  # class bits for [n] tags
_CONSTRUCTED = 0x20

_PRINTABLE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?")


def _length(size: int) -> bytes:
    """Short form below 128; otherwise 0x80|n followed by n big-endian length bytes."""
    if size < 0x80:
        return bytes([size])
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def tlv(tag: int, contents: bytes) -> bytes:
    """One element with a single-byte tag (tag numbers 0..30 are all X.509 uses)."""
    if not 0 <= tag <= 0xFF or tag & 0x1F == 0x1F:
        raise ValueError(f"unsupported tag byte {tag:#x}")
    return bytes([tag]) + _length(len(contents)) + contents


def sequence(*elements: bytes) -> bytes:
    return tlv(_SEQUENCE, b"".join(elements))


def set_of(*elements: bytes) -> bytes:
    # DER orders the members of a SET OF by their encodings (X.690 11.6).
    return tlv(_SET, b"".join(sorted(elements)))


def boolean(value: bool) -> bytes:
    return tlv(_BOOLEAN, b"\xff" if value else b"\x00")


def integer(value: int) -> bytes:
    """Two's complement in the fewest bytes that still carry the sign bit.

    ``~value`` of a negative number has the same bit length as its minimal
    two's complement form without the sign, so one formula covers both signs:
    128 -> 00 80 (a 0x80 first byte would read as negative), -128 -> 80.
    """
    magnitude = value if value >= 0 else ~value
    return tlv(_INTEGER, value.to_bytes(magnitude.bit_length() // 8 + 1, "big", signed=True))


def oid(dotted: str) -> bytes:
    """An OBJECT IDENTIFIER: first two arcs folded into 40*a+b, each arc base-128."""
    try:
        arcs = [int(arc) for arc in dotted.split(".")]
    except ValueError:
        raise ValueError(f"not a dotted OID: {dotted!r}") from None
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] >= 40) or min(arcs) < 0:
        raise ValueError(f"not a valid OID: {dotted!r}")
    body = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        # Seven bits per byte, most significant first; the high bit marks "more follows".
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return tlv(_OID, bytes(body))


def bit_string(data: bytes, unused_bits: int = 0) -> bytes:
    """A BIT STRING; DER wants the ``unused_bits`` padding at the end to be zero."""
    if not 0 <= unused_bits <= 7 or (unused_bits and not data):
        raise ValueError("unused bits must be 0..7, and 0 for an empty string")
    if data and data[-1] & ((1 << unused_bits) - 1):
        raise ValueError("padding bits of a BIT STRING must be zero")
    return tlv(_BIT_STRING, bytes([unused_bits]) + data)


def named_bits(*positions: int) -> bytes:
    """A named-bit BIT STRING (KeyUsage): bit 0 is the most significant bit of the first byte.

    DER drops trailing zero bits (X.690 11.2.2), so the string ends at the highest set bit.
    """
    if not positions:
        return bit_string(b"")
    if min(positions) < 0:
        raise ValueError("bit positions are non-negative")
    size = max(positions) + 1
    width = (size + 7) // 8
    value = 0
    for position in positions:
        value |= 1 << (width * 8 - 1 - position)
    return bit_string(value.to_bytes(width, "big"), width * 8 - size)


def octet_string(data: bytes) -> bytes:
    return tlv(_OCTET_STRING, data)


def utf8_string(text: str) -> bytes:
    return tlv(_UTF8_STRING, text.encode("utf-8"))


def printable_string(text: str) -> bytes:
    if not set(text) <= _PRINTABLE:
        raise ValueError(f"not a PrintableString: {text!r}")
    return tlv(_PRINTABLE_STRING, text.encode("ascii"))


def ia5_string(text: str) -> bytes:
    return tlv(_IA5_STRING, text.encode("ascii"))  # UnicodeEncodeError is a ValueError


def time_value(epoch_seconds: int) -> bytes:
    """An X.509 Time: UTCTime for 1950..2049, GeneralizedTime otherwise (RFC 5280 4.1.2.5).

    Both in UTC with seconds and a ``Z``, never fractions, as RFC 5280 requires.
    """
    t = time.gmtime(epoch_seconds)
    clock = f"{t.tm_mon:02d}{t.tm_mday:02d}{t.tm_hour:02d}{t.tm_min:02d}{t.tm_sec:02d}Z"
    if 1950 <= t.tm_year < 2050:
        return tlv(_UTC_TIME, f"{t.tm_year % 100:02d}{clock}".encode("ascii"))
    if not 0 <= t.tm_year <= 9999:
        raise ValueError(f"year {t.tm_year} does not fit a GeneralizedTime")
    return tlv(_GENERALIZED_TIME, f"{t.tm_year:04d}{clock}".encode("ascii"))


def explicit(number: int, element: bytes) -> bytes:
    """``[number] EXPLICIT``: a constructed context tag wrapping a whole element."""
    return context(number, element, constructed=True)


def context(number: int, contents: bytes, *, constructed: bool = False) -> bytes:
    """A context-specific ``[number]`` tag around raw contents (``IMPLICIT`` when primitive).

    For an IMPLICIT tag on a primitive type, pass that type's contents
    (e.g. the ASCII of a dNSName); for one on a SEQUENCE, pass the joined
    members and ``constructed=True``.
    """
    if not 0 <= number <= 30:
        raise ValueError(f"context tag number {number} needs the long tag form")
    return tlv(_CONTEXT | (_CONSTRUCTED if constructed else 0) | number, contents)
