"""The team engine's own HTTP client: TLS trust, HTTPS_PROXY tunnels, kept-alive connections, bad answers.

TLS runs against a real OpenBao dev server in ``-dev-tls`` mode (its own CA); the proxy
is a small recording CONNECT relay on 127.0.0.1; the keep-alive and bad-answer cases
use a scripted HTTP server, so each answer is exactly what the test says.
"""

from __future__ import annotations

import base64
import socket
import threading

import pytest

from authsome.errors import StoreError
from authsome.vault.openbao_engine import CasMismatch, Engine
from authsome.vault.openbao_http import Node
from tests.proxy.tls_helpers import read_head
from tests.team.bao_server import DevServer

WAIT = 10.0


@pytest.fixture(scope="module")
def tls_bao(tmp_path_factory):
    base = tmp_path_factory.mktemp("bao-tls")
    server = DevServer(base / "bao-dev.log", tls_dir=base)
    yield server
    server.stop()


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("VAULT_CACERT", "BAO_CACERT", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def write_and_read(engine: Engine, path: str) -> dict:
    engine.request("POST", f"secret/data/{path}", what="write", json={"data": {"field": "value"}})
    return engine.request("GET", f"secret/data/{path}", what="read")["data"]["data"]


# -- TLS ------------------------------------------------------------------------------------------------------


def test_tls_engine_is_trusted_through_vault_cacert(tls_bao, clean_env):
    clean_env.setenv("VAULT_CACERT", tls_bao.ca)
    engine = Engine([tls_bao.url], lambda: tls_bao.root_token)
    try:
        assert write_and_read(engine, "tls-ok") == {"field": "value"}
    finally:
        engine.close()


def test_tls_engine_with_an_unknown_ca_is_refused_with_a_clear_error(tls_bao, clean_env):
    engine = Engine([tls_bao.url], lambda: tls_bao.root_token, total_timeout=3)
    with pytest.raises(StoreError) as err:
        engine.request("GET", "secret/data/anything", what="read")
    engine.close()
    message = err.value.message
    assert tls_bao.url in message and "TLS certificate not trusted" in message and "VAULT_CACERT" in message
    assert tls_bao.root_token not in message


def test_an_unreadable_ca_file_is_named(tls_bao, clean_env, tmp_path):
    clean_env.setenv("BAO_CACERT", str(tmp_path / "missing.pem"))
    engine = Engine([tls_bao.url], lambda: tls_bao.root_token)
    with pytest.raises(StoreError) as err:
        engine.request("GET", "secret/data/anything", what="read")
    engine.close()
    assert "missing.pem" in err.value.message and "BAO_CACERT" in err.value.message


# -- HTTPS_PROXY ----------------------------------------------------------------------------------------------


class LoopbackServer:
    """A plain TCP server on 127.0.0.1 that hands each connection to ``_serve`` on its own thread."""

    def __init__(self) -> None:
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            conn.settimeout(WAIT)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        raise NotImplementedError


class ConnectProxy(LoopbackServer):
    """A CONNECT-only relay that records each request head it receives."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []
        super().__init__()

    def _serve(self, client: socket.socket) -> None:
        with client:
            head = read_head(client)
            if not head.endswith(b"\r\n\r\n"):
                return
            self.heads.append(head)
            host, _, port = head.split(b" ")[1].decode().rpartition(":")
            with socket.create_connection((host, int(port)), timeout=WAIT) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
                _pipe(client, upstream)


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        try:
            target.shutdown(socket.SHUT_WR)
        except OSError:
            pass


@pytest.fixture
def connect_proxy():
    proxy = ConnectProxy()
    yield proxy
    proxy.close()


def test_https_proxy_is_used_through_a_tunnel_with_its_credentials(tls_bao, clean_env, connect_proxy):
    clean_env.setenv("VAULT_CACERT", tls_bao.ca)
    clean_env.setenv("HTTPS_PROXY", connect_proxy.url.replace("http://", "http://agent:p%40ss@"))
    engine = Engine([tls_bao.url], lambda: tls_bao.root_token)
    try:
        assert write_and_read(engine, "via-proxy") == {"field": "value"}
    finally:
        engine.close()
    assert len(connect_proxy.heads) == 1  # one tunnel, kept for both requests
    head = connect_proxy.heads[0]
    assert head.startswith(f"CONNECT 127.0.0.1:{tls_bao.port} HTTP/1.".encode())
    assert b"Proxy-Authorization: Basic " + base64.b64encode(b"agent:p@ss") in head
    assert tls_bao.root_token.encode() not in head  # the token travels inside the TLS tunnel only


@pytest.mark.parametrize("proxy", ["http://:8080", "http://proxy.invalid:port"])
def test_an_unusable_https_proxy_setting_is_a_clear_error(tls_bao, clean_env, proxy):
    clean_env.setenv("VAULT_CACERT", tls_bao.ca)
    clean_env.setenv("HTTPS_PROXY", proxy)
    engine = Engine([tls_bao.url], lambda: tls_bao.root_token, total_timeout=3)
    with pytest.raises(StoreError) as err:
        engine.request("GET", "secret/data/anything", what="read")
    engine.close()
    assert "HTTPS_PROXY is not a usable proxy URL" in err.value.message


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "localhost,.example,127.0.0.1", "*"])
def test_no_proxy_exempts_the_engine(tls_bao, clean_env, connect_proxy, no_proxy):
    clean_env.setenv("VAULT_CACERT", tls_bao.ca)
    clean_env.setenv("https_proxy", connect_proxy.url)
    clean_env.setenv("no_proxy", no_proxy)
    engine = Engine([tls_bao.url], lambda: tls_bao.root_token)
    try:
        assert write_and_read(engine, "no-proxy") == {"field": "value"}
    finally:
        engine.close()
    assert connect_proxy.heads == []


# -- kept-alive connections and bad answers (a scripted HTTP server) ------------------------------------------


class ScriptedEngine(LoopbackServer):
    """Answers request n with ``answers[n]`` (raw bytes), then closes the connection when told to."""

    def __init__(self, answers: list[bytes], close_after_each: bool = False) -> None:
        self.answers = list(answers)
        self.close_after_each = close_after_each
        self.requests: list[bytes] = []
        super().__init__()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            buffer = b""
            while self.answers:
                while b"\r\n\r\n" not in buffer:
                    piece = conn.recv(65536)
                    if not piece:
                        return
                    buffer += piece
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                buffer = buffer[length:]
                self.requests.append(head)
                conn.sendall(self.answers.pop(0))
                if self.close_after_each:
                    return  # no "Connection: close": the client finds out when it next writes


def json_answer(status: str, body: bytes) -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        status.encode(),
        len(body),
        body,
    )


def test_a_kept_connection_the_engine_closed_is_replaced_once(clean_env):
    """The node closed the kept connection (idle timeout, restart): the next request reconnects at once."""
    server = ScriptedEngine([json_answer("200 OK", b'{"n": 1}'), json_answer("200 OK", b'{"n": 2}')], True)
    node = Node(server.url)
    headers = {"X-Vault-Token": "token-xyz"}
    try:
        first = node.exchange("GET", "secret/data/a", None, headers, WAIT, WAIT)
        second = node.exchange("GET", "secret/data/b", None, headers, WAIT, WAIT)  # Dropped without the retry
    finally:
        node.close()
        server.close()
    assert (first.status, first.body, second.status, second.body) == (200, b'{"n": 1}', 200, b'{"n": 2}')
    assert server.connections == 2
    assert all(b"X-Vault-Token: token-xyz" in head for head in server.requests)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (json_answer("200 OK", b"<html>not json</html>"), "not a JSON object"),
        (json_answer("200 OK", b"[1, 2]"), "not a JSON object"),
        (
            json_answer("400 Bad Request", b'{"errors": ["unsupported path"]}'),
            "rejected the request to read: unsupported path",
        ),
        (
            json_answer("418 I'm a teapot", b'{"errors": ["short and stout"]}'),
            "failed to read: HTTP 418: short and stout",
        ),
    ],
)
def test_bad_answers_are_clear_store_errors(clean_env, answer, expected):
    server = ScriptedEngine([answer])
    engine = Engine([server.url], lambda: "token-xyz")
    try:
        with pytest.raises(StoreError) as err:
            engine.request("GET", "secret/data/a", what="read")
    finally:
        engine.close()
        server.close()
    assert expected in err.value.message and "token-xyz" not in err.value.message


def test_a_check_and_set_refusal_is_a_cas_mismatch(clean_env):
    body = b'{"errors": ["check-and-set parameter did not match the current version"]}'
    server = ScriptedEngine([json_answer("400 Bad Request", body)])
    engine = Engine([server.url], lambda: "token-xyz")
    try:
        with pytest.raises(CasMismatch):
            engine.request("POST", "secret/data/a", what="write", json={"data": {}, "options": {"cas": 3}})
    finally:
        engine.close()
        server.close()
    assert b"Content-Type: application/json" in server.requests[0]
