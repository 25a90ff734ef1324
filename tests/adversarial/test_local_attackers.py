"""Local attackers against the loopback servers: the gaps left by the area suites.

Already proven elsewhere (not repeated here):
- browser form: rebinding Host, foreign Origin, missing/reused tokens, slowloris, floods, body
  limits (tests/secret_input/test_browser_hostile.py);
- proxy: 407, SNI/Host/CONNECT disagreement, lookalike hosts, cross-host redirects, plain HTTP
  (tests/proxy/test_server.py, tests/e2e/proxy/test_boundaries.py);
- OAuth callback: other paths and hosts refused, one-shot, wrong state stops the login
  (tests/oauth/test_oauth_pkce.py).
Here: the OAuth callback listener under slowloris and floods, rebinding with the right state,
homograph and lookalike hosts against the proxy's route matching, and the form under a flood of
hostile pages while the real user submits.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from authsome.flows.callback import LoopbackCallback
from authsome.proxy.routes import Route, find_route
from tests.adversarial import leakhook
from tests.conftest import canary_key

STATE = "state-" + "x" * 30


def start_listener(timeout: float):
    listener = LoopbackCallback(0)
    results: list = []

    def wait():
        try:
            results.append(listener.wait(STATE, timeout))
        except Exception as exc:  # noqa: BLE001 - recorded for the test
            results.append(exc)

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    return listener, results, thread


def real_redirect(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(f"GET /callback?code=the-code&state={STATE} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        try:
            s.recv(4096)
        except OSError:
            pass


# Regression: the listener once served one connection at a time with only a per-read timeout, so a
# client trickling a byte a second held it until the login timed out (exit 8).
def test_callback_trickling_client_does_not_block_the_real_redirect():
    listener, results, thread = start_listener(timeout=8)
    attacker = socket.create_connection(("127.0.0.1", listener.port), timeout=5)
    stop = threading.Event()

    def trickle():
        for byte in b"GET /favicon.ico HTTP/1.1\r\nX-Slow: " + b"a" * 60:
            if stop.wait(1.0):
                return
            try:
                attacker.send(bytes([byte]))
            except OSError:
                return

    threading.Thread(target=trickle, daemon=True).start()
    try:
        time.sleep(0.3)  # the attacker is being served first
        threading.Thread(target=real_redirect, args=(listener.port,), daemon=True).start()
        thread.join(15)
    finally:
        stop.set()
        attacker.close()
    assert results and not isinstance(results[0], Exception), results
    assert results[0].code == "the-code" and results[0].state_ok


def test_callback_survives_a_flood_then_takes_the_real_redirect():
    listener, results, thread = start_listener(timeout=60)
    junk = [
        b"",  # connect and close at once
        b"GET / HTTP/1.1\r\n\r\n",
        f"GET /callback?code=x&state={STATE} HTTP/1.1\r\nHost: evil.example\r\n\r\n".encode(),  # rebinding
        f"GET /callback?code=x&state={STATE} HTTP/1.1\r\nHost: localhost:{listener.port}\r\n\r\n".encode(),
        b"POST /callback HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,  # a TLS hello
    ]
    for i in range(200):
        with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as s:
            data = junk[i % len(junk)]
            if data:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                try:
                    s.recv(4096)
                except OSError:
                    pass
    assert results == []  # nothing so far completed or aborted the login
    real_redirect(listener.port)
    thread.join(30)
    assert results and not isinstance(results[0], Exception), results
    assert results[0].code == "the-code"


@pytest.mark.parametrize(
    "host",
    [
        "api.openai.com.evil.test",
        "evil-api.openai.com",
        "apiopenai.com",
        "api.openai.co",
        "api-openai.com",
        "api.openai.com@evil.test",
        "api.openai.com:443",
        "api.openai.com:evil",
        "xn--pi-openai-1c.com",
        "аpi.openai.com",  # Cyrillic 'а'
        "api.opеnai.com",  # Cyrillic 'е'
        "api.openai.com\u2024evil.test",  # one-dot leader
        "api.openai.com\x00.evil.test",
        "api.openai.com/evil",
        "[api.openai.com]",
        " api.openai.com",
        "api..openai.com",
        "*.openai.com",
        "",
    ],
)
def test_lookalike_and_homograph_hosts_find_no_route(host):
    route = Route("openai", "default", ["api.openai.com"], lambda: None)
    assert find_route([route], host) is None


@pytest.mark.parametrize("host", ["api.openai.com", "API.OpenAI.com", "api.openai.com.", "ａｐｉ.openai.com"])
def test_the_provider_host_in_its_equivalent_spellings_is_matched(host):
    # Equal after case folding, the trailing dot and IDNA mapping (fullwidth letters are the same DNS name).
    route = Route("openai", "default", ["api.openai.com"], lambda: None)
    assert find_route([route], host) is route


def test_form_takes_the_users_key_while_hostile_pages_flood_it(form_run_factory):
    run = form_run_factory(timeout=60)
    stop = threading.Event()
    refused: list[int] = []

    def hostile(kind: int):
        while not stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", run.port), timeout=5) as s:
                    if kind == 0:  # a rebinding page: right path, its own Host
                        s.sendall(f"GET {run.path} HTTP/1.1\r\nHost: evil.example:{run.port}\r\n\r\n".encode())
                    else:  # a cross-site form post
                        body = b"csrf_token=guess&api_key=sk-attackerKEY0123456789abcd"
                        s.sendall(
                            f"POST {run.path} HTTP/1.1\r\nHost: {run.host}\r\nOrigin: http://evil.example\r\n"
                            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                            + body
                        )
                    answer = s.recv(64)
                    if answer.startswith(b"HTTP/1."):
                        refused.append(int(answer.split(b" ")[1]))
            except OSError:
                pass  # turned away by the connection bound, or the server finished

    attackers = [threading.Thread(target=hostile, args=(i % 2,), daemon=True) for i in range(6)]
    for t in attackers:
        t.start()
    key = canary_key()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = run.submit(key)
                break
            except (OSError, AssertionError):  # the page fetch met the connection bound: the user retries
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        leakhook.SCANNER.record("form-response", "answer to the user's submit under a flood", response.body)
        run.wait(20)
    finally:
        stop.set()
        for t in attackers:
            t.join(10)
    assert response.status == 200
    assert run.result == {"api_key": key}
    assert refused and all(400 <= code < 500 for code in refused)
