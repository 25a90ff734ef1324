"""The per-run certificate authority and the leaves it issues.

Why the certificates are written by hand: ``authsome run`` makes a fresh CA
on every start, and importing ``cryptography.x509`` (with the datetime,
email and ASN.1 machinery behind it) costs about 100 ms, most of the budget
of a short run. The X.509 structure itself is small and fixed, so this module
writes it with the tiny DER encoder in ``der.py``; every cryptographic step
(P-256 key generation, the ECDSA-SHA256 signature, the SHA-1 key identifier)
is still ``cryptography``'s, from its cheap ``hazmat`` modules. The private
key given to ``ssl`` is encoded here too, because
``cryptography.hazmat.primitives.serialization`` pulls in the SSH key code.
``ssl`` itself is imported only when a server context is built.

The CA key and the leaf key live in memory only. ``ssl`` can load a
certificate chain from a path only, so the chain is handed to OpenSSL through
an anonymous in-memory file (``memfd``) or, where that does not exist, a
pipe: never a file on disk.

The CA carries a critical name constraint that permits only the DNS names of
the hosts the run may intercept (and the exact address of an IP-literal
host), so even a leaked CA could not vouch for any other site.
"""

from __future__ import annotations

import binascii
import os
import threading
import time
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from authsome.proxy import der

if TYPE_CHECKING:
    import ssl
    from ipaddress import IPv4Address, IPv6Address

_VALIDITY = 30 * 24 * 3600
_BACKDATE = 3600  # tolerate small clock skew

# Object identifiers (RFC 5280, RFC 5480, RFC 5758).
_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
_PRIME256V1 = "1.2.840.10045.3.1.7"
_ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"
_ORGANIZATION = "2.5.4.10"
_COMMON_NAME = "2.5.4.3"
_SUBJECT_KEY_ID = "2.5.29.14"
_KEY_USAGE = "2.5.29.15"
_SUBJECT_ALT_NAME = "2.5.29.17"
_BASIC_CONSTRAINTS = "2.5.29.19"
_NAME_CONSTRAINTS = "2.5.29.30"
_AUTHORITY_KEY_ID = "2.5.29.35"
_EXT_KEY_USAGE = "2.5.29.37"
_SERVER_AUTH = "1.3.6.1.5.5.7.3.1"

# KeyUsage bit positions (RFC 5280 4.2.1.3).
_DIGITAL_SIGNATURE, _KEY_CERT_SIGN, _CRL_SIGN = 0, 5, 6

_SIGNATURE_ALGORITHM = der.sequence(der.oid(_ECDSA_WITH_SHA256))  # parameters absent (RFC 5758)
_P256_ALGORITHM = der.sequence(der.oid(_EC_PUBLIC_KEY), der.oid(_PRIME256V1))

_MAX_COMMON_NAME = 64  # ub-common-name (RFC 5280 appendix A)


def permitted_subtrees(host_patterns: list[str]) -> list[str]:
    """DNS subtrees for the name constraint: ``*.example.com`` -> ``example.com``."""
    subtrees: set[str] = set()
    for pattern in host_patterns:
        subtrees.add(pattern[2:] if pattern.startswith("*.") else pattern)
    return sorted(subtrees)


class RunCA:
    """A throwaway CA for one ``authsome run``: issues and caches one leaf per host."""

    def __init__(self, host_patterns: list[str] | None = None) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        # One key for every leaf of this run: key generation is the slow part.
        self._leaf_key = ec.generate_private_key(ec.SECP256R1())
        self._name = _name((_ORGANIZATION, "authsome"), (_COMMON_NAME, f"authsome run CA {os.urandom(4).hex()}"))
        point = _public_point(self._key)
        self._key_id = _key_id(point)
        extensions = [
            _extension(_BASIC_CONSTRAINTS, der.sequence(der.boolean(True), der.integer(0)), critical=True),
            _extension(_KEY_USAGE, der.named_bits(_KEY_CERT_SIGN, _CRL_SIGN), critical=True),
            _extension(_SUBJECT_KEY_ID, der.octet_string(self._key_id)),
        ]
        subtrees = permitted_subtrees(host_patterns or [])
        if subtrees:
            # NameConstraints ::= SEQUENCE { permittedSubtrees [0] GeneralSubtrees }
            permitted = der.context(0, b"".join(_subtree(s) for s in subtrees), constructed=True)
            extensions.append(_extension(_NAME_CONSTRAINTS, der.sequence(permitted), critical=True))
        self._cert_der = _certificate(self._key, self._name, self._name, point, extensions)
        self._cert_pem = _pem("CERTIFICATE", self._cert_der)
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()

    @property
    def cert_pem(self) -> bytes:
        """The public CA certificate, PEM (safe to write to disk)."""
        return self._cert_pem

    @property
    def cert_der(self) -> bytes:
        """The public CA certificate, DER."""
        return self._cert_der

    def issue_leaf(self, host: str) -> bytes:
        """A server certificate (DER) for ``host`` signed by this CA.

        It does not check ``host`` against the name constraint: clients do,
        and the tests rely on that to show an outside leaf is refused.
        """
        point = _public_point(self._leaf_key)
        # An IP in the CN would be checked as a DNS name against the name constraint;
        # a CN longer than 64 characters is not allowed at all. Clients read the SAN.
        too_long = len(host) > _MAX_COMMON_NAME
        common_name = "authsome-leaf" if _ip(host) is not None or too_long else host
        extensions = [
            _extension(_SUBJECT_ALT_NAME, der.sequence(_general_name(host))),
            _extension(_BASIC_CONSTRAINTS, der.sequence(), critical=True),  # cA DEFAULT FALSE: omitted
            _extension(_EXT_KEY_USAGE, der.sequence(der.oid(_SERVER_AUTH))),
            _extension(_KEY_USAGE, der.named_bits(_DIGITAL_SIGNATURE), critical=True),
            _extension(_SUBJECT_KEY_ID, der.octet_string(_key_id(point))),
            # AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING }
            _extension(_AUTHORITY_KEY_ID, der.sequence(der.context(0, self._key_id))),
        ]
        return _certificate(self._key, self._name, _name((_COMMON_NAME, common_name)), point, extensions)

    def cached_context(self, host: str) -> ssl.SSLContext | None:
        """The server context for ``host`` if one was built already (never blocks)."""
        return self._contexts.get(host)

    def server_context(self, host: str) -> ssl.SSLContext:
        """A TLS server context presenting a leaf for ``host`` (cached per host)."""
        with self._lock:
            ctx = self._contexts.get(host)
            if ctx is None:
                ctx = self._build_context(host)
                self._contexts[host] = ctx
            return ctx

    def _build_context(self, host: str) -> ssl.SSLContext:
        import ssl

        chain = _pem("CERTIFICATE", self.issue_leaf(host)) + self._cert_pem
        key = _pem("PRIVATE KEY", _pkcs8(self._leaf_key))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        # Only HTTP/1.1 is relayed: make HTTP/2-capable clients fall back.
        ctx.set_alpn_protocols(["http/1.1"])
        ctx.sni_callback = _remember_sni
        _load_chain_from_memory(ctx, chain, key)
        return ctx


def _certificate(
    issuer_key: ec.EllipticCurvePrivateKey, issuer: bytes, subject: bytes, point: bytes, extensions: list[bytes]
) -> bytes:
    """Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue } (RFC 5280 4.1)."""
    now = int(time.time())
    tbs = der.sequence(
        der.explicit(0, der.integer(2)),  # version v3
        der.integer(_serial_number()),
        _SIGNATURE_ALGORITHM,
        issuer,
        der.sequence(der.time_value(now - _BACKDATE), der.time_value(now + _VALIDITY)),
        subject,
        _subject_public_key_info(point),
        der.explicit(3, der.sequence(*extensions)),
    )
    # ECDSA signatures from cryptography are already DER: SEQUENCE { r, s }.
    signature = _sign(issuer_key, tbs)
    return der.sequence(tbs, _SIGNATURE_ALGORITHM, der.bit_string(signature))


class _EcdsaSha256(ec.ECDSA):
    """``ec.ECDSA(hashes.SHA256())`` without running its constructor.

    The constructor imports cryptography's whole OpenSSL backend (about 13 ms)
    only to check support for deterministic nonces, which we do not ask for.
    ``sign`` reads just the two public properties that this class answers.
    """

    algorithm = hashes.SHA256()
    deterministic_signing = False

    def __init__(self) -> None:  # deliberately skips ec.ECDSA.__init__
        pass


_ECDSA_SHA256 = _EcdsaSha256()


def _sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    try:
        return key.sign(data, _ECDSA_SHA256)
    except (AttributeError, TypeError):
        # A cryptography release that reads more than those properties: pay for the import.
        return key.sign(data, ec.ECDSA(hashes.SHA256()))


def _serial_number() -> int:
    """A random positive serial of up to 159 bits: 20 octets at most, never negative (RFC 5280 4.1.2.2)."""
    return (int.from_bytes(os.urandom(20), "big") >> 1) or 1


def _name(*attributes: tuple[str, str]) -> bytes:
    """Name ::= SEQUENCE OF SET OF AttributeTypeAndValue, one attribute per RDN, as UTF8String."""
    return der.sequence(
        *(der.set_of(der.sequence(der.oid(kind), der.utf8_string(value))) for kind, value in attributes)
    )


def _extension(extension_id: str, value: bytes, *, critical: bool = False) -> bytes:
    """Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }."""
    flag = [der.boolean(True)] if critical else []  # DER omits a DEFAULT value
    return der.sequence(der.oid(extension_id), *flag, der.octet_string(value))


def _public_point(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The uncompressed P-256 point 04 || X || Y (SEC 1 2.3.3)."""
    numbers = key.public_key().public_numbers()
    return b"\x04" + numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")


def _subject_public_key_info(point: bytes) -> bytes:
    return der.sequence(_P256_ALGORITHM, der.bit_string(point))


def _key_id(point: bytes) -> bytes:
    """SHA-1 of the subjectPublicKey bits: RFC 5280 4.2.1.2 method (1), as most CAs do."""
    digest = hashes.Hash(hashes.SHA1())  # noqa: S303 -- an identifier, not a security function
    digest.update(point)
    return digest.finalize()


def _pkcs8(key: ec.EllipticCurvePrivateKey) -> bytes:
    """PrivateKeyInfo (RFC 5208) around an ECPrivateKey (RFC 5915) with its public key."""
    secret = key.private_numbers().private_value.to_bytes(32, "big")
    ec_private_key = der.sequence(
        der.integer(1), der.octet_string(secret), der.explicit(1, der.bit_string(_public_point(key)))
    )
    return der.sequence(der.integer(0), _P256_ALGORITHM, der.octet_string(ec_private_key))


def _pem(label: str, body: bytes) -> bytes:
    """PEM (RFC 7468): base64 in 64-character lines between BEGIN/END markers."""
    text = binascii.b2a_base64(body, newline=False)
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return b"\n".join([f"-----BEGIN {label}-----".encode(), *lines, f"-----END {label}-----".encode(), b""])


def _ip(host: str) -> IPv4Address | IPv6Address | None:
    # Only something made of digits and dots, or holding a colon, can be an address:
    # ordinary host names skip the ipaddress import.
    if ":" not in host and not host.replace(".", "").isdigit():
        return None
    import ipaddress

    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _general_name(host: str) -> bytes:
    """A SAN entry: iPAddress [7] for an IP literal (clients check those as IPs), else dNSName [2]."""
    address = _ip(host)
    if address is not None:
        return der.context(7, address.packed)
    return der.context(2, host.encode("ascii"))  # an IA5String; non-ASCII names must arrive as IDNA


def _subtree(name: str) -> bytes:
    """GeneralSubtree ::= SEQUENCE { base GeneralName } (minimum 0, maximum absent).

    An IP literal is constrained to exactly that address: address || all-ones mask.
    """
    address = _ip(name)
    if address is not None:
        return der.sequence(der.context(7, address.packed + b"\xff" * len(address.packed)))
    return der.sequence(der.context(2, name.encode("ascii")))


def _remember_sni(ssl_object, server_name, _ctx) -> None:
    """Keep the client's SNI on the connection: the proxy compares it with the CONNECT host."""
    ssl_object.authsome_sni = server_name


def _load_chain_from_memory(ctx: ssl.SSLContext, chain: bytes, key: bytes) -> None:
    """``ctx.load_cert_chain`` from bytes, without writing them to a disk file."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("authsome-leaf", os.MFD_CLOEXEC)
        try:
            os.write(fd, chain + key)
            # Each open of /proc/self/fd/N starts at offset 0: OpenSSL reads it twice.
            ctx.load_cert_chain(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return
    # Elsewhere, one pipe per read; each holds a few kilobytes without blocking.
    fds: list[int] = []
    try:
        paths = []
        for data in (chain, key):
            read_fd, write_fd = os.pipe()
            fds.append(read_fd)
            os.write(write_fd, data)
            os.close(write_fd)
            paths.append(f"/dev/fd/{read_fd}")
        ctx.load_cert_chain(paths[0], paths[1])
    finally:
        for fd in fds:
            os.close(fd)
