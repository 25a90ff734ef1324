"""Hostile local clients against the real form server: each is refused and nothing is captured.

Every test ends by showing that capture is still waiting (nothing was accepted)
and, where useful, that a legitimate submission afterwards is what it returns.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from urllib.parse import urlencode

import pytest

from authsome.errors import AuthsomeError, InputTimeoutError, InvalidCredentialError
from authsome.secret_input import form_server
from authsome.secret_input.request import FieldSpec, SecretRequest

from .conftest import BAD_KEY, GOOD_KEY, HINT, openai_request, openai_validate, send

OTHER_KEY = "sk-otherKEY9876543210zyxwvu"


def form_headers(run, length: int, *, host=None, origin="same", extra=()):
    headers = [("Host", run.host if host is None else host)]
    if origin == "same":
        headers.append(("Origin", run.origin))
    elif origin is not None:
        headers.append(("Origin", origin))
    headers += [("Content-Type", "application/x-www-form-urlencoded"), ("Content-Length", str(length))]
    headers += list(extra)
    return headers


def assert_still_waiting_then_legit_wins(run):
    assert run.running and run.result is None
    assert run.submit(GOOD_KEY).status == 200
    run.wait()
    assert run.result == {"api_key": GOOD_KEY}


def test_page_headers_and_masked_input(form_run):
    run = form_run()
    page = run.get()
    assert page.status == 200
    csp = page.headers["content-security-policy"]
    for directive in ("default-src 'none'", "form-action 'self'", "frame-ancestors 'none'"):
        assert directive in csp
    assert "script-src" not in csp  # no script allowed at all (default-src 'none')
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] in ("no-referrer", "same-origin")
    assert '<input type="password"' in page.text and 'autocomplete="off"' in page.text
    assert "<script" not in page.text
    # localhost:<port> is the same server under its other name.
    assert run.get(headers=[("Host", f"localhost:{run.port}")]).status == 200
    assert_still_waiting_then_legit_wins(run)


@pytest.mark.parametrize(
    "host",
    ["rebind.test:{port}", "127.0.0.1", "127.0.0.1:1", "localhost", "127.0.0.1:{port}.evil.test", ""],
)
def test_wrong_host_is_refused(form_run, host):
    run = form_run()
    csrf = run.csrf()
    bad_host = host.format(port=run.port)
    page = run.get(headers=[("Host", bad_host)])
    assert page.status == 403
    assert csrf not in page.text
    body = urlencode({"csrf_token": csrf, "api_key": OTHER_KEY}).encode()
    posted = run.post({}, body=body, headers=form_headers(run, len(body), host=bad_host, origin=None))
    assert posted.status == 403
    assert_still_waiting_then_legit_wins(run)


def test_missing_or_duplicate_host_is_refused(form_run):
    run = form_run()
    assert run.get(headers=[]).status in (400, 403)
    assert run.get(headers=[("Host", run.host), ("Host", "evil.test")]).status == 403
    assert_still_waiting_then_legit_wins(run)


@pytest.mark.parametrize(
    "origin_headers",
    [
        [("Origin", "http://evil.test")],
        [("Origin", "null")],
        [("Origin", "http://127.0.0.1:1")],
        [("Origin", "https://127.0.0.1:{port}")],
        [("Sec-Fetch-Site", "cross-site")],
        [("Origin", "{origin}"), ("Sec-Fetch-Site", "same-site")],
        [("Origin", "{origin}"), ("Origin", "http://evil.test")],
    ],
)
def test_foreign_origin_post_is_refused(form_run, origin_headers):
    run = form_run()
    body = urlencode({"csrf_token": run.csrf(), "api_key": OTHER_KEY}).encode()
    extra = [(k, v.format(port=run.port, origin=run.origin)) for k, v in origin_headers]
    resp = run.post({}, body=body, headers=form_headers(run, len(body), origin=None, extra=extra))
    assert resp.status == 403
    assert_still_waiting_then_legit_wins(run)


def test_post_without_origin_but_with_tokens_is_accepted(form_run):
    """Origin may be absent (non-browser clients); the CSRF token still gates it."""
    run = form_run()
    body = urlencode({"csrf_token": run.csrf(), "api_key": GOOD_KEY}).encode()
    assert run.post({}, body=body, headers=form_headers(run, len(body), origin=None)).status == 200
    run.wait()
    assert run.result == {"api_key": GOOD_KEY}


def test_missing_and_wrong_url_token(form_run):
    run = form_run()
    csrf = run.csrf()
    token = run.path.rsplit("/", 1)[1]
    for path in ("/", "/login", "/favicon.ico", "/static/x.css", "http://evil.test/"):
        assert run.get(path).status == 404, path
    for path in ("/login/", "/login/" + "A" * len(token), "/login/" + token[:-1], run.path + "x", run.path + "/"):
        assert run.get(path).status == 403, path
        body = urlencode({"csrf_token": csrf, "api_key": OTHER_KEY}).encode()
        assert run.post({}, path=path, body=body).status == 403, path
    assert_still_waiting_then_legit_wins(run)


def test_missing_or_wrong_csrf_token(form_run):
    run = form_run()
    csrf = run.csrf()
    assert run.post({"api_key": OTHER_KEY}).status == 403
    assert run.post({"csrf_token": "", "api_key": OTHER_KEY}).status == 403
    assert run.post({"csrf_token": csrf[:-1] + ("A" if csrf[-1] != "A" else "B"), "api_key": OTHER_KEY}).status == 403
    assert run.post({"csrf_token": "é" * 10, "api_key": OTHER_KEY}).status == 403
    dup = f"csrf_token={csrf}&csrf_token={csrf}&api_key={OTHER_KEY}".encode()
    assert run.post({}, body=dup).status == 400
    assert_still_waiting_then_legit_wins(run)


def test_token_is_spent_after_success(form_run):
    run = form_run()
    csrf = run.csrf()
    # Connections opened before the success, used after it (the server thread may still answer).
    early = [socket.create_connection(("127.0.0.1", run.port), timeout=10) for _ in range(2)]
    assert run.submit(GOOD_KEY).status == 200
    run.wait()
    assert run.result == {"api_key": GOOD_KEY}

    body = urlencode({"csrf_token": csrf, "api_key": OTHER_KEY}).encode()
    requests = [
        b"POST "
        + run.path.encode()
        + b" HTTP/1.1\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in form_headers(run, len(body))).encode()
        + b"\r\n"
        + body,
        f"GET {run.path} HTTP/1.1\r\nHost: {run.host}\r\n\r\n".encode(),
    ]
    for sock, raw in zip(early, requests, strict=True):
        with sock:
            try:
                sock.sendall(raw)
                answer = sock.recv(65536)
            except OSError:
                answer = b""
            # Either the server is gone (connection closed) or it refuses the spent link.
            assert answer == b"" or answer.startswith(b"HTTP/1.0 403"), answer[:80]
    with pytest.raises(OSError):  # and the listening socket is closed
        socket.create_connection(("127.0.0.1", run.port), timeout=5).close()
    assert run.result == {"api_key": GOOD_KEY}


def test_concurrent_valid_submissions_only_one_wins(form_run):
    run = form_run()
    csrf = run.csrf()
    keys = [GOOD_KEY, OTHER_KEY]
    socks = [socket.create_connection(("127.0.0.1", run.port), timeout=10) for _ in keys]
    for sock, key in zip(socks, keys, strict=True):
        body = urlencode({"csrf_token": csrf, "api_key": key}).encode()
        head = "".join(f"{k}: {v}\r\n" for k, v in form_headers(run, len(body)))
        sock.sendall(f"POST {run.path} HTTP/1.1\r\n{head}\r\n".encode() + body)
    answers = []
    for sock in socks:
        with sock:
            try:
                answers.append(sock.recv(65536))
            except OSError:
                answers.append(b"")
    run.wait()
    winners = [key for key, answer in zip(keys, answers, strict=True) if answer.startswith(b"HTTP/1.0 200")]
    assert len(winners) == 1
    assert run.result == {"api_key": winners[0]}


def test_body_limits(form_run):
    run = form_run()
    csrf = run.csrf()
    big = urlencode({"csrf_token": csrf, "api_key": "sk-" + "a" * (form_server.MAX_BODY_BYTES + 10)}).encode()
    assert run.post({}, body=big).status == 413
    # A declared length far past the limit is refused before reading anything.
    huge = form_headers(run, 10**9)
    assert send(run.port, "POST", run.path, huge, b"").status == 413
    headers = [h for h in form_headers(run, 0) if h[0] != "Content-Length"]
    assert send(run.port, "POST", run.path, headers, b"").status == 411
    chunked = headers + [("Transfer-Encoding", "chunked")]
    assert send(run.port, "POST", run.path, chunked, b"0\r\n\r\n").status == 411
    json_type = [
        ("Content-Type", "application/json") if k == "Content-Type" else (k, v) for k, v in form_headers(run, 2)
    ]
    assert send(run.port, "POST", run.path, json_type, b"{}").status == 415
    assert run.post({}, body=b"\xff\xfe=\x00").status == 400
    assert_still_waiting_then_legit_wins(run)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "HEAD"])
def test_other_methods_are_refused(form_run, method):
    run = form_run()
    resp = send(run.port, method, run.path, [("Host", run.host), ("Content-Length", "0")], b"")
    assert resp.status == 405
    assert resp.headers["allow"] == "GET, POST"
    assert_still_waiting_then_legit_wins(run)


def test_garbage_and_unknown_methods_print_nothing(form_run, capfd):
    run = form_run()
    assert send(run.port, "BREW", run.path, [("Host", run.host)]).status == 501
    with socket.create_connection(("127.0.0.1", run.port), timeout=10) as sock:
        sock.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.0 400")
    with socket.create_connection(("127.0.0.1", run.port), timeout=10) as sock:
        sock.sendall(b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.0 414")
    run.post({"csrf_token": run.csrf(), "api_key": BAD_KEY})
    out, err = capfd.readouterr()
    assert err == "" and out == ""
    assert_still_waiting_then_legit_wins(run)


def always_reject(values):
    raise InvalidCredentialError("Nope <b>bold</b>", "Try 'again' & again")


def test_rejected_values_are_never_echoed(form_run):
    request = SecretRequest(
        "twilio",
        "Twilio",
        "work",
        [FieldSpec("account_sid", "Account SID", False, None), FieldSpec("auth_token", "Auth token", True, HINT)],
        always_reject,
    )
    run = form_run(request, timeout=1.5)
    csrf = run.csrf()
    resp = run.post({"csrf_token": csrf, "account_sid": "AC<i>sid</i>", "auth_token": "tok<script>SECRET</script>"})
    assert resp.status == 400
    assert "SECRET" not in resp.text and "tok&lt;script" not in resp.text
    assert "Nope &lt;b&gt;bold&lt;/b&gt;" in resp.text and "<b>bold</b>" not in resp.text
    assert "Try &#x27;again&#x27; &amp; again" in resp.text
    assert 'value="AC&lt;i&gt;sid&lt;/i&gt;"' in resp.text  # non-secret field kept, escaped
    empty = run.post({"csrf_token": csrf, "account_sid": "AC1", "auth_token": "  "})
    assert empty.status == 400 and "Please enter the Auth token." in empty.text
    control = run.post({"csrf_token": csrf, "account_sid": "AC1", "auth_token": "ab\ncd"})
    assert control.status == 400 and "line breaks" in control.text and "ab\ncd" not in control.text
    assert run.running and run.result is None
    run.wait()
    assert isinstance(run.error, InputTimeoutError) and run.result is None


def test_validator_bug_stops_without_leaking(form_run):
    def broken(values):
        raise RuntimeError(f"boom {values['api_key']}")

    run = form_run(request=openai_request(broken))
    resp = run.submit(GOOD_KEY)
    assert resp.status == 500 and GOOD_KEY not in resp.text
    run.wait()
    assert isinstance(run.error, AuthsomeError) and run.error.exit_code == 1
    assert GOOD_KEY not in str(run.error) and GOOD_KEY not in repr(run.error)
    assert run.error.__cause__ is None and run.error.__context__ is None


def test_slow_clients_do_not_block_a_real_one(form_run, monkeypatch):
    monkeypatch.setattr(form_server, "SOCKET_TIMEOUT", 1.0)
    monkeypatch.setattr(form_server, "CONNECTION_DEADLINE", 1.5)
    run = form_run()
    slow = []
    for _ in range(5):
        sock = socket.create_connection(("127.0.0.1", run.port), timeout=10)
        sock.sendall(f"POST {run.path} HTTP/1.1\r\nHost: {run.host}\r\nX-Slow:".encode())
        slow.append(sock)
    # A legitimate user is served while the slow ones hang.
    assert run.get().status == 200
    # A client trickling one byte at a time (never idle past the socket timeout) is still cut off.
    cut_off = False
    deadline = time.monotonic() + 10
    while not cut_off and time.monotonic() < deadline:
        try:
            slow[0].sendall(b"a")
            readable, _, _ = select.select([slow[0]], [], [], 0.2)
            cut_off = bool(readable) and slow[0].recv(1) == b""
        except OSError:
            cut_off = True
    assert cut_off
    for sock in slow:
        sock.close()
    assert_still_waiting_then_legit_wins(run)


def test_connection_flood_is_bounded(form_run, monkeypatch):
    monkeypatch.setattr(form_server, "MAX_CONNECTIONS", 3)
    run = form_run()
    hogs = [socket.create_connection(("127.0.0.1", run.port), timeout=10) for _ in range(3)]
    for hog in hogs:  # each hog is being served (a handler holds a slot): it gets answered
        hog.sendall(f"GET /nothing HTTP/1.1\r\nHost: {run.host}\r\n".encode())
    time.sleep(0.2)  # let the server accept them (not an assertion on time)
    with socket.create_connection(("127.0.0.1", run.port), timeout=5) as extra:
        # Over the bound: closed at once and unanswered (long before any deadline reaper).
        extra.sendall(f"GET {run.path} HTTP/1.1\r\nHost: {run.host}\r\n\r\n".encode())
        assert extra.recv(10) == b""
    for hog in hogs:  # the hogs finish their requests; their slots free up
        hog.sendall(b"\r\n")
        assert hog.recv(12) == b"HTTP/1.0 404"
        hog.close()
    assert_still_waiting_then_legit_wins(run)


def test_validate_receives_values(form_run):
    seen = []

    def recording(values):
        seen.append(dict(values))
        openai_validate(values)

    run = form_run(request=openai_request(recording))
    run.submit("  " + GOOD_KEY + "  ")  # pasted with surrounding spaces
    run.wait()
    assert seen == [{"api_key": GOOD_KEY}]
    assert run.result == {"api_key": GOOD_KEY}


def test_session_takes_exactly_one_value_even_under_a_race():
    """The one-time rule at its core: of many concurrent valid submissions, one is taken."""

    def slow_validate(values):
        time.sleep(0.02)  # widen the window a missing lock would leave open
        openai_validate(values)

    session = form_server.Session(openai_request(slow_validate))
    with pytest.raises(InvalidCredentialError):
        session.accept({"api_key": BAD_KEY})  # a bad value does not spend the link
    keys = [f"sk-raceKEY{n:02d}abcdefghijklmnopq" for n in range(16)]
    outcomes: dict[str, str] = {}
    start = threading.Barrier(len(keys))

    def submit(key: str) -> None:
        start.wait(timeout=10)
        outcomes[key] = session.accept({"api_key": key})

    threads = [threading.Thread(target=submit, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    accepted = [key for key, outcome in outcomes.items() if outcome == "accepted"]
    assert len(accepted) == 1
    assert sorted(outcomes.values()).count("spent") == len(keys) - 1
    assert session.result == {"api_key": accepted[0]}
    assert session.accept({"api_key": OTHER_KEY}) == "spent"
    assert session.result == {"api_key": accepted[0]}
