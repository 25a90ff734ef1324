"""The per-run CA: hand-built DER that cryptography, the openssl CLI and a real TLS client all accept.

Parsing with ``cryptography.x509`` is itself a strictness check: its parser
refuses anything that is not DER.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID, SignatureAlgorithmOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from authsome.proxy import ca as ca_module
from authsome.proxy.ca import RunCA, permitted_subtrees

OPENSSL = shutil.which("openssl")
CA_EXTENSIONS = [
    ExtensionOID.BASIC_CONSTRAINTS,
    ExtensionOID.KEY_USAGE,
    ExtensionOID.SUBJECT_KEY_IDENTIFIER,
    ExtensionOID.NAME_CONSTRAINTS,
]
LEAF_EXTENSIONS = [
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    ExtensionOID.BASIC_CONSTRAINTS,
    ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.KEY_USAGE,
    ExtensionOID.SUBJECT_KEY_IDENTIFIER,
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
]


def ca_cert(ca: RunCA) -> x509.Certificate:
    return x509.load_der_x509_certificate(ca.cert_der)


def leaf_cert(ca: RunCA, host: str) -> x509.Certificate:
    return x509.load_der_x509_certificate(ca.issue_leaf(host))


def ext(cert: x509.Certificate, kind):
    return cert.extensions.get_extension_for_class(kind)


def pem(der_bytes: bytes) -> bytes:
    return x509.load_der_x509_certificate(der_bytes).public_bytes(serialization.Encoding.PEM)


def check_common_fields(cert: x509.Certificate, before_build: float) -> None:
    """Version, serial, signature algorithm, P-256 key and the -1 h .. +30 days validity."""
    assert cert.version is x509.Version.v3
    assert 0 < cert.serial_number < 2**159
    assert cert.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert isinstance(cert.public_key().curve, ec.SECP256R1)
    start, end = cert.not_valid_before_utc.timestamp(), cert.not_valid_after_utc.timestamp()
    assert end - start == 30 * 24 * 3600 + 3600
    assert before_build - 3600 - 2 <= start <= time.time() - 3600 + 2


def test_ca_certificate_fields():
    before = time.time()
    ca = RunCA(["api.openai.com", "*.googleapis.com", "api.openai.com"])
    cert = ca_cert(ca)
    check_common_fields(cert, before)
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "authsome"
    common_name = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert re.fullmatch(r"authsome run CA [0-9a-f]{8}", common_name)
    assert [a.oid for a in cert.subject] == [NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME]
    cert.verify_directly_issued_by(cert)  # the self-signature checks out

    assert [e.oid for e in cert.extensions] == CA_EXTENSIONS
    basic = ext(cert, x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    usage = ext(cert, x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign and usage.value.crl_sign
    assert not (usage.value.digital_signature or usage.value.key_encipherment or usage.value.content_commitment)
    assert not (usage.value.data_encipherment or usage.value.key_agreement)
    ski = ext(cert, x509.SubjectKeyIdentifier)
    assert not ski.critical
    assert ski.value == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    constraint = ext(cert, x509.NameConstraints)
    assert constraint.critical
    assert constraint.value.permitted_subtrees == [x509.DNSName("api.openai.com"), x509.DNSName("googleapis.com")]
    assert constraint.value.excluded_subtrees is None


def test_ca_pem_matches_der_and_holds_no_private_key():
    ca = RunCA(["api.openai.com"])
    assert x509.load_pem_x509_certificate(ca.cert_pem) == ca_cert(ca)
    assert ca.cert_pem.startswith(b"-----BEGIN CERTIFICATE-----\n")
    assert ca.cert_pem.endswith(b"-----END CERTIFICATE-----\n")
    assert all(len(line) <= 64 for line in ca.cert_pem.splitlines())
    assert b"PRIVATE KEY" not in ca.cert_pem


def test_every_run_gets_its_own_ca():
    first, second = ca_cert(RunCA(["a.example"])), ca_cert(RunCA(["a.example"]))
    assert first.serial_number != second.serial_number
    assert first.subject != second.subject
    assert first.public_key() != second.public_key()


def test_ip_literal_constraint_is_exactly_that_address():
    cert = ca_cert(RunCA(["10.0.0.5", "api.openai.com", "::1"]))
    assert ext(cert, x509.NameConstraints).value.permitted_subtrees == [
        x509.IPAddress(ipaddress.ip_network("10.0.0.5/32")),
        x509.IPAddress(ipaddress.ip_network("::1/128")),
        x509.DNSName("api.openai.com"),
    ]


def test_without_hosts_there_is_no_name_constraint():
    cert = ca_cert(RunCA([]))
    assert [e.oid for e in cert.extensions] == CA_EXTENSIONS[:3]


def test_leaf_certificate_fields():
    ca = RunCA(["api.openai.com"])
    before = time.time()
    leaf = leaf_cert(ca, "api.openai.com")
    check_common_fields(leaf, before)
    assert leaf.issuer == ca_cert(ca).subject
    assert [a.oid for a in leaf.subject] == [NameOID.COMMON_NAME]
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "api.openai.com"
    leaf.verify_directly_issued_by(ca_cert(ca))

    assert [e.oid for e in leaf.extensions] == LEAF_EXTENSIONS
    san = ext(leaf, x509.SubjectAlternativeName)
    assert not san.critical and list(san.value) == [x509.DNSName("api.openai.com")]
    basic = ext(leaf, x509.BasicConstraints)
    assert basic.critical and not basic.value.ca and basic.value.path_length is None
    eku = ext(leaf, x509.ExtendedKeyUsage)
    assert not eku.critical and list(eku.value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    usage = ext(leaf, x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert not (usage.value.key_cert_sign or usage.value.crl_sign or usage.value.key_encipherment)
    ski = ext(leaf, x509.SubjectKeyIdentifier)
    assert not ski.critical and ski.value == x509.SubjectKeyIdentifier.from_public_key(leaf.public_key())
    aki = ext(leaf, x509.AuthorityKeyIdentifier)
    assert not aki.critical
    assert aki.value.key_identifier == ext(ca_cert(ca), x509.SubjectKeyIdentifier).value.digest
    assert aki.value.authority_cert_issuer is None and aki.value.authority_cert_serial_number is None


def test_ip_leaf_has_an_ip_san_and_a_cn_that_is_not_a_dns_name():
    leaf = leaf_cert(RunCA(["10.0.0.5"]), "10.0.0.5")
    assert list(ext(leaf, x509.SubjectAlternativeName).value) == [x509.IPAddress(ipaddress.ip_address("10.0.0.5"))]
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "authsome-leaf"


def test_host_too_long_for_a_common_name_is_still_named_in_the_san():
    host = "a" * 60 + ".example.com"
    leaf = leaf_cert(RunCA([host]), host)
    assert list(ext(leaf, x509.SubjectAlternativeName).value) == [x509.DNSName(host)]
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "authsome-leaf"


def test_leaf_key_encoding_is_the_pkcs8_cryptography_writes():
    key = ec.generate_private_key(ec.SECP256R1())
    expected = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert ca_module._pkcs8(key) == expected


def python_verify(ca: RunCA, leaf: bytes, name: x509.GeneralName):
    store = Store([ca_cert(ca)])
    policy = PolicyBuilder().store(store).time(datetime.datetime.now(datetime.UTC))
    return policy.build_server_verifier(name).verify(x509.load_der_x509_certificate(leaf), [])


def test_cryptography_verifier_accepts_leaves_and_enforces_the_constraint():
    ca = RunCA(["api.openai.com", "*.googleapis.com", "10.0.0.5"])
    python_verify(ca, ca.issue_leaf("api.openai.com"), x509.DNSName("api.openai.com"))
    python_verify(ca, ca.issue_leaf("www.googleapis.com"), x509.DNSName("www.googleapis.com"))
    python_verify(ca, ca.issue_leaf("10.0.0.5"), x509.IPAddress(ipaddress.ip_address("10.0.0.5")))
    with pytest.raises(VerificationError):
        python_verify(ca, ca.issue_leaf("evil.example"), x509.DNSName("evil.example"))


def openssl_verify(tmp_path, ca: RunCA, host: str, *options: str) -> subprocess.CompletedProcess:
    """``openssl verify`` of a leaf for ``host``; issue_leaf does not refuse outside hosts, which is the test path."""
    assert OPENSSL, "the openssl command line tool is needed (Debian package openssl)"
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    (tmp_path / "leaf.pem").write_bytes(pem(ca.issue_leaf(host)))
    command = [OPENSSL, "verify", "-x509_strict", "-purpose", "sslserver", *options, "-CAfile", "ca.pem", "leaf.pem"]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(
    ("patterns", "host", "options"),
    [
        (["api.openai.com"], "api.openai.com", ["-verify_hostname", "api.openai.com"]),
        (["*.googleapis.com"], "www.googleapis.com", ["-verify_hostname", "www.googleapis.com"]),
        (["10.0.0.5", "api.openai.com"], "10.0.0.5", ["-verify_ip", "10.0.0.5"]),
    ],
)
def test_openssl_verify_accepts_leaves(tmp_path, patterns, host, options):
    result = openssl_verify(tmp_path, RunCA(patterns), host, *options)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "leaf.pem: OK" in result.stdout


@pytest.mark.parametrize(
    ("patterns", "host"),
    [
        (["api.openai.com"], "evil.example"),
        (["api.openai.com"], "openai.com.evil.example"),
        (["*.googleapis.com"], "googleapis.com.evil.example"),
        (["10.0.0.5"], "10.0.0.6"),
    ],
)
def test_openssl_verify_rejects_a_leaf_outside_the_name_constraint(tmp_path, patterns, host):
    result = openssl_verify(tmp_path, RunCA(patterns), host)
    assert result.returncode != 0
    assert "permitted subtree violation" in result.stdout + result.stderr


def handshake(server_ctx: ssl.SSLContext, server_hostname: str, ca: RunCA) -> tuple[bytes, str | None, str | None]:
    """A real TLS handshake on loopback; the client trusts only the run CA. Returns (data, ALPN, server-seen SNI)."""
    seen: dict[str, str | None] = {}
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)

        def serve() -> None:
            try:
                conn, _ = listener.accept()
                conn.settimeout(10)
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    seen["sni"] = getattr(tls, "authsome_sni", None)
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError):
                pass  # the client refused us: its side reports why

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        client_ctx = ssl.create_default_context(cadata=ca.cert_pem.decode())
        client_ctx.set_alpn_protocols(["h2", "http/1.1"])
        try:
            with socket.create_connection(listener.getsockname(), timeout=10) as raw:
                with client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
                    return tls.recv(2), tls.selected_alpn_protocol(), seen.get("sni")
        finally:
            thread.join(10)


def test_tls_handshake_succeeds_for_an_intercepted_host():
    ca = RunCA(["api.openai.com"])
    data, alpn, sni = handshake(ca.server_context("api.openai.com"), "api.openai.com", ca)
    assert (data, alpn, sni) == (b"ok", "http/1.1", "api.openai.com")


def test_tls_handshake_for_an_ip_host():
    ca = RunCA(["127.0.0.1"])
    data, _, _ = handshake(ca.server_context("127.0.0.1"), "127.0.0.1", ca)
    assert data == b"ok"


def test_tls_client_refuses_a_name_the_leaf_does_not_cover():
    ca = RunCA(["api.openai.com", "other.example"])
    with pytest.raises(ssl.SSLCertVerificationError) as refused:
        handshake(ca.server_context("api.openai.com"), "other.example", ca)
    assert "mismatch" in refused.value.verify_message.lower()


def test_tls_client_refuses_a_leaf_outside_the_name_constraint():
    ca = RunCA(["api.openai.com"])
    with pytest.raises(ssl.SSLCertVerificationError) as refused:
        handshake(ca.server_context("evil.example"), "evil.example", ca)
    assert "permitted subtree violation" in refused.value.verify_message


def test_chain_loads_through_pipes_where_memfd_is_missing(monkeypatch):
    monkeypatch.delattr(os, "memfd_create")
    ca = RunCA(["api.openai.com"])
    data, _, _ = handshake(ca.server_context("api.openai.com"), "api.openai.com", ca)
    assert data == b"ok"


def test_server_context_is_cached_per_host():
    ca = RunCA(["api.openai.com", "b.example"])
    assert ca.cached_context("api.openai.com") is None
    ctx = ca.server_context("api.openai.com")
    assert isinstance(ctx, ssl.SSLContext)
    assert ca.server_context("api.openai.com") is ctx
    assert ca.cached_context("api.openai.com") is ctx
    assert ca.server_context("b.example") is not ctx


def test_permitted_subtrees():
    assert permitted_subtrees(["*.a.example", "b.example", "b.example"]) == ["a.example", "b.example"]


def test_signing_falls_back_to_the_stock_ecdsa_object(monkeypatch):
    """Should a cryptography release read more than the two properties, signing still works."""

    class ReadsOnlyAlgorithm(ec.ECDSA):
        algorithm = hashes.SHA256()

        def __init__(self) -> None:
            pass  # no _deterministic_signing: the inherited property raises AttributeError

    monkeypatch.setattr(ca_module, "_ECDSA_SHA256", ReadsOnlyAlgorithm())
    ca = RunCA(["api.openai.com"])
    leaf_cert(ca, "api.openai.com").verify_directly_issued_by(ca_cert(ca))


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_building_the_ca_imports_neither_x509_nor_ssl():
    code = (
        "import sys; from authsome.proxy.ca import RunCA; RunCA(['api.openai.com']).cert_pem; "
        "print('cryptography.x509' in sys.modules, 'ssl' in sys.modules)"
    )
    assert run_python(code) == "False False"


def test_issuing_leaves_imports_no_heavy_module():
    code = (
        "import sys; from authsome.proxy.ca import RunCA; ca = RunCA(['api.openai.com']); ca.issue_leaf('x.example');"
        " print(sorted(m for m in ('cryptography.x509', 'ssl', 'datetime', 'email',"
        " 'cryptography.hazmat.backends.openssl.backend', 'cryptography.hazmat.primitives.serialization')"
        " if m in sys.modules))"
    )
    assert run_python(code) == "[]"
