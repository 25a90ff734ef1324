"""The DER encoder against known encodings (X.690 examples, RFC 5280 OIDs) and its refusals."""

from __future__ import annotations

import pytest

from authsome.proxy import der


@pytest.mark.parametrize(
    ("value", "encoding"),
    [
        (0, "020100"),
        (1, "020101"),
        (127, "02017f"),
        (128, "02020080"),  # a leading 0x80 would read as negative: pad with 00
        (255, "020200ff"),
        (256, "02020100"),
        (32767, "02027fff"),
        (32768, "0203008000"),
        (2**64, "0209010000000000000000"),
        (-1, "0201ff"),
        (-128, "020180"),  # minimal: no ff padding when the sign bit is already set
        (-129, "0202ff7f"),
        (-256, "0202ff00"),
        (-32768, "02028000"),
    ],
)
def test_integer(value, encoding):
    assert der.integer(value).hex() == encoding


@pytest.mark.parametrize(
    ("dotted", "encoding"),
    [
        ("1.2.840.10045.2.1", "06072a8648ce3d0201"),  # id-ecPublicKey
        ("1.2.840.10045.3.1.7", "06082a8648ce3d030107"),  # prime256v1
        ("1.2.840.10045.4.3.2", "06082a8648ce3d040302"),  # ecdsa-with-SHA256
        ("2.5.29.19", "0603551d13"),  # basicConstraints
        ("2.5.4.3", "0603550403"),  # commonName
        ("1.3.6.1.5.5.7.3.1", "06082b06010505070301"),  # id-kp-serverAuth
        ("2.999.3", "0603883703"),  # X.690 8.19.5 example: first subidentifier 1079
        ("0.0", "060100"),
    ],
)
def test_oid(dotted, encoding):
    assert der.oid(dotted).hex() == encoding


@pytest.mark.parametrize("bad", ["1", "3.1", "0.40", "1.40", "1.2.-3", "1.a", "", "1..2"])
def test_oid_refuses_what_it_cannot_encode(bad):
    with pytest.raises(ValueError):
        der.oid(bad)


@pytest.mark.parametrize(
    ("size", "header"),
    [(0, "0400"), (127, "047f"), (128, "048180"), (255, "0481ff"), (256, "04820100"), (65536, "0483010000")],
)
def test_length_forms(size, header):
    encoded = der.octet_string(b"\xab" * size)
    assert encoded.hex().startswith(header)
    assert len(encoded) == len(header) // 2 + size


def test_boolean():
    assert der.boolean(True).hex() == "0101ff"
    assert der.boolean(False).hex() == "010100"


def test_bit_strings():
    assert der.bit_string(b"\x04\x01").hex() == "0303000401"
    assert der.bit_string(b"").hex() == "030100"
    assert der.bit_string(b"\x80", 7).hex() == "03020780"


@pytest.mark.parametrize(("data", "unused"), [(b"\x01", 1), (b"\xff", 3), (b"\x80", 8), (b"", 1), (b"\x00", -1)])
def test_bit_string_refuses_non_der(data, unused):
    with pytest.raises(ValueError):
        der.bit_string(data, unused)


@pytest.mark.parametrize(
    ("positions", "encoding"),
    [
        ((0,), "03020780"),  # KeyUsage digitalSignature
        ((5, 6), "03020106"),  # KeyUsage keyCertSign + cRLSign
        ((0, 2), "030205a0"),  # digitalSignature + keyEncipherment
        ((7,), "03020001"),
        ((0, 8), "0303078080"),  # decipherOnly spills into a second byte
        ((), "030100"),
    ],
)
def test_named_bits_drop_trailing_zero_bits(positions, encoding):
    assert der.named_bits(*positions).hex() == encoding


def test_sequence_set_and_context_tags():
    assert der.sequence().hex() == "3000"
    assert der.sequence(der.integer(1), der.boolean(True)).hex() == "3006020101" + "0101ff"
    # SET OF members are sorted by their encodings, whatever order they come in.
    assert der.set_of(der.integer(2), der.integer(1)).hex() == "3106020101020102"
    assert der.explicit(0, der.integer(2)).hex() == "a003020102"  # version v3
    assert der.explicit(3, der.sequence()).hex() == "a3023000"
    assert der.context(2, b"a.b").hex() == "8203612e62"  # dNSName, IMPLICIT IA5String
    assert der.context(7, bytes([10, 0, 0, 5])).hex() == "87040a000005"  # iPAddress
    assert der.context(0, der.sequence(), constructed=True).hex() == "a0023000"


def test_tags_needing_the_long_form_are_refused():
    with pytest.raises(ValueError):
        der.context(31, b"")
    with pytest.raises(ValueError):
        der.tlv(0x1F, b"")
    with pytest.raises(ValueError):
        der.tlv(0x100, b"")


def test_strings():
    assert der.utf8_string("é").hex() == "0c02c3a9"
    assert der.printable_string("Ab 1").hex() == "130441622031"
    assert der.ia5_string("a.b").hex() == "1603612e62"
    with pytest.raises(ValueError):
        der.printable_string("a@b")  # '@' is not in the PrintableString alphabet
    with pytest.raises(ValueError):
        der.ia5_string("bücher.example")


@pytest.mark.parametrize(
    ("seconds", "encoding"),
    [
        (0, "170d" + b"700101000000Z".hex()),
        (2**31, "170d" + b"380119031408Z".hex()),
        (2524607999, "170d" + b"491231235959Z".hex()),  # last second of UTCTime
        (2524608000, "180f" + b"20500101000000Z".hex()),  # 2050 onwards: GeneralizedTime
        (-631152000, "170d" + b"500101000000Z".hex()),  # 1950-01-01: first second of UTCTime
        (-631152001, "180f" + b"19491231235959Z".hex()),
    ],
)
def test_time_value_switches_at_rfc5280_boundaries(seconds, encoding):
    assert der.time_value(seconds).hex() == encoding
