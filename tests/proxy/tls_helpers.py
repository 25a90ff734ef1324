"""A test CA, a loopback TLS upstream for ``localhost`` and a CONNECT client, for in-process proxy tests."""

from __future__ import annotations

import base64
import datetime
import socket
import ssl
import threading
from pathlib import Path


def write_test_pki(directory: Path) -> tuple[str, str, str]:
    """(ca.pem, leaf.pem, leaf.key) with the leaf valid for ``localhost`` and 127.0.0.1."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "proxy unit test CA")])

    def builder(subject, public_key):
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
        )

    ca = (
        builder(ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]), key.public_key())
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths = directory / "ca.pem", directory / "leaf.pem", directory / "leaf.key"
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(leaf.public_bytes(pem))
    paths[2].write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return tuple(str(p) for p in paths)


def read_head(sock) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    return data


class _TlsListener:
    """A TLS server socket on 127.0.0.1 that hands each accepted raw socket to ``_serve`` on its own thread."""

    def __init__(self, cert: str, key: str) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def _listen(self) -> None:
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.sock.close()


class ScriptedUpstream(_TlsListener):
    """TLS server on 127.0.0.1; ``script(n, head) -> bytes | None`` answers request n (None: close)."""

    def __init__(self, cert: str, key: str, script) -> None:
        super().__init__(cert, key)
        self.script = script
        self.heads: list[bytes] = []
        self._listen()

    def _serve(self, raw) -> None:
        try:
            with self.ctx.wrap_socket(raw, server_side=True) as conn:
                while head := read_head(conn):
                    self.heads.append(head)
                    answer = self.script(len(self.heads), head)
                    if answer is None:
                        return
                    conn.sendall(answer)
        except (OSError, ssl.SSLError):
            return


def bearer_injection(key: str):
    """The ``Injection`` of an ``Authorization: Bearer <key>`` provider."""
    from authsome.providers.model import Injection

    inj = Injection()
    inj.headers = [("Authorization", f"Bearer {key}")]
    inj.replaces = ["authorization"]
    inj.secret_values = [key]
    return inj


def connect_through(proxy_address, target: str, password: str, cafile: str, server_hostname: str) -> ssl.SSLSocket:
    sock = socket.create_connection(proxy_address, timeout=10)
    token = base64.b64encode(f"authsome:{password}".encode()).decode()
    sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: Basic {token}\r\n\r\n".encode())
    assert read_head(sock).startswith(b"HTTP/1.1 200")
    return ssl.create_default_context(cafile=cafile).wrap_socket(sock, server_hostname=server_hostname)


class UpstreamConn:
    """One accepted connection of a ``RawUpstream``: buffered reads; ``raw`` keeps every byte received."""

    def __init__(self, tls: ssl.SSLSocket, index: int) -> None:
        self.tls = tls
        self.index = index
        self.raw = bytearray()
        self._buffer = bytearray()

    def _fill(self) -> bool:
        try:
            data = self.tls.recv(65536)
        except (OSError, ssl.SSLError):
            return False
        if not data:
            return False
        self.raw += data
        self._buffer += data
        return True

    def read_until(self, marker: bytes) -> bytes | None:
        """Bytes up to and including ``marker``; None when the stream ends first."""
        while marker not in self._buffer:
            if not self._fill():
                return None
        end = self._buffer.index(marker) + len(marker)
        data = bytes(self._buffer[:end])
        del self._buffer[:end]
        return data

    def read_exact(self, size: int) -> bytes | None:
        while len(self._buffer) < size:
            if not self._fill():
                return None
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def read_head(self) -> bytes | None:
        return self.read_until(b"\r\n\r\n")

    def read_body(self, head: bytes) -> bytes | None:
        """The body that ``head`` announces (Content-Length or chunked), de-chunked; None if cut short."""
        lower = head.lower()
        if b"\r\ntransfer-encoding:" in lower:
            body = b""
            while True:
                size_line = self.read_until(b"\r\n")
                if size_line is None:
                    return None
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.read_until(b"\r\n") not in (b"\r\n", None):
                        pass  # trailer fields
                    return body
                piece = self.read_exact(size + 2)
                if piece is None:
                    return None
                body += piece[:-2]
        for line in lower.split(b"\r\n"):
            if line.startswith(b"content-length:"):
                return self.read_exact(int(line.split(b":", 1)[1]))
        return b""

    def read_request(self) -> tuple[bytes, bytes] | None:
        head = self.read_head()
        if head is None:
            return None
        body = self.read_body(head)
        return None if body is None else (head, body)

    def drain(self) -> None:
        """Read until the peer closes or the socket's timeout passes (everything lands in ``raw``)."""
        while self._fill():
            pass

    def send(self, data: bytes) -> None:
        self.tls.sendall(data)


class RawUpstream(_TlsListener):
    """TLS server on 127.0.0.1: ``handler(conn: UpstreamConn)`` runs for each connection, in its own thread.

    ``conns`` lists every connection in accept order, so a test can assert on the
    exact bytes the upstream received (``conn.raw``). Reads time out after ``timeout``.
    """

    def __init__(self, cert: str, key: str, handler, timeout: float = 10.0) -> None:
        super().__init__(cert, key)
        self.handler = handler
        self.timeout = timeout
        self.conns: list[UpstreamConn] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._listen()

    def _serve(self, raw) -> None:
        # As real servers do: without it a small answer can wait for an ACK (Nagle), and a handler
        # that closes with unread input resets the connection, destroying that answer unsent.
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw.settimeout(self.timeout)
        try:
            tls = self.ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        with self._lock:
            conn = UpstreamConn(tls, len(self.conns))
            self.conns.append(conn)
        try:
            self.handler(conn)
        except (OSError, ssl.SSLError):
            pass
        except BaseException as exc:  # an assertion in a handler: reported by the test
            self.errors.append(exc)
        finally:
            tls.close()

    @property
    def received(self) -> bytes:
        """Everything received, on all connections, in accept order."""
        return b"".join(bytes(conn.raw) for conn in list(self.conns))
