"""The per-run certificate authority and the leaves it issues.

The CA key and the leaf key live in memory only. ``ssl`` can load a
certificate chain from a path only, so the chain is handed to OpenSSL through
an anonymous in-memory file (``memfd``) or, where that does not exist, a
pipe: never a file on disk.

The CA carries a critical name constraint that permits only the DNS names of
the hosts the run may intercept, so even a leaked CA could not vouch for any
other site.
"""

from __future__ import annotations

import datetime
import os
import secrets
import ssl
import threading

_VALIDITY = datetime.timedelta(days=30)
_BACKDATE = datetime.timedelta(hours=1)  # tolerate small clock skew


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def permitted_subtrees(host_patterns: list[str]) -> list[str]:
    """DNS subtrees for the name constraint: ``*.example.com`` -> ``example.com``."""
    subtrees: set[str] = set()
    for pattern in host_patterns:
        subtrees.add(pattern[2:] if pattern.startswith("*.") else pattern)
    return sorted(subtrees)


class RunCA:
    """A throwaway CA for one ``authsome run``: issues and caches one leaf per host."""

    def __init__(self, host_patterns: list[str] | None = None) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self._key = ec.generate_private_key(ec.SECP256R1())
        # One key for every leaf of this run: key generation is the slow part.
        self._leaf_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "authsome"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"authsome run CA {secrets.token_hex(4)}"),
            ]
        )
        public_key = self._key.public_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - _BACKDATE)
            .not_valid_after(_now() + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )
        subtrees = permitted_subtrees(host_patterns or [])
        if subtrees:
            builder = builder.add_extension(
                x509.NameConstraints(permitted_subtrees=[_subtree(s) for s in subtrees], excluded_subtrees=None),
                critical=True,
            )
        self._cert = builder.sign(self._key, hashes.SHA256())
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()

    @property
    def cert_pem(self) -> bytes:
        """The public CA certificate (safe to write to disk)."""
        from cryptography.hazmat.primitives.serialization import Encoding

        return self._cert.public_bytes(Encoding.PEM)

    @property
    def certificate(self):
        return self._cert

    def issue_leaf(self, host: str):
        """A server certificate for ``host`` signed by this CA."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        public_key = self._leaf_key.public_key()
        # An IP in the CN would be checked as a DNS name against the name constraint.
        common_name = "authsome-leaf" if _ip(host) is not None else host
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self._cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - _BACKDATE)
            .not_valid_after(_now() + _VALIDITY)
            .add_extension(x509.SubjectAlternativeName([_general_name(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )

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
        from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

        leaf = self.issue_leaf(host)
        chain = leaf.public_bytes(Encoding.PEM) + self.cert_pem
        key = self._leaf_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        # Only HTTP/1.1 is relayed: make HTTP/2-capable clients fall back.
        ctx.set_alpn_protocols(["http/1.1"])
        ctx.sni_callback = _remember_sni
        _load_chain_from_memory(ctx, chain, key)
        return ctx


def _ip(host: str):
    import ipaddress

    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _general_name(host: str):
    """A SAN entry: an IP address for an IP literal (clients check those as IPs), else a DNS name."""
    from cryptography import x509

    address = _ip(host)
    return x509.IPAddress(address) if address is not None else x509.DNSName(host)


def _subtree(name: str):
    """A permitted subtree: exactly one address for an IP literal, else a DNS subtree."""
    import ipaddress

    from cryptography import x509

    address = _ip(name)
    if address is not None:
        return x509.IPAddress(ipaddress.ip_network(address))
    return x509.DNSName(name)


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
