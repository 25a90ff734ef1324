"""Timeout, Ctrl-C, busy port, opening the browser, and the countdown of the browser form."""

from __future__ import annotations

import io
import re
import socket
import stat
import sys
import time

import pexpect
import pytest

from authsome.errors import InputTimeoutError
from authsome.secret_input import browser_form

from .conftest import GOOD_KEY, child_env

WAITER = """
import sys
from authsome.errors import CancelledError
from authsome.secret_input.browser_form import capture_in_browser
from authsome.secret_input.request import FieldSpec, SecretRequest

request = SecretRequest("openai", "OpenAI", "default", [FieldSpec("api_key", "API key")])
try:
    capture_in_browser(request, port=0, open_browser=False, timeout=float(sys.argv[1]))
except CancelledError as err:
    print(f"{type(err).__name__} {err.exit_code}: {err.message} | {err.hint}", file=sys.stderr, flush=True)
    sys.exit(err.exit_code)
"""


def port_is_closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except OSError:
        return True
    return False


def test_timeout_raises_and_closes_the_socket(form_run):
    run = form_run(timeout=0.5)
    run.wait()
    assert isinstance(run.error, InputTimeoutError)
    assert run.error.exit_code == 8
    assert "openai (default)" in run.error.message
    assert "--timeout SECONDS" in run.error.hint
    assert port_is_closed(run.port)


def test_busy_port_moves_to_another_and_says_so(form_run):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        busy = squatter.getsockname()[1]
        run = form_run(port=busy)
        assert run.port != busy
        assert any(f"Port {busy} is busy; using port {run.port} instead." in m for m in run.messages)
        assert run.submit(GOOD_KEY).status == 200
        run.wait()
        assert run.result == {"api_key": GOOD_KEY}


def test_default_port_is_7998_unless_taken(form_run):
    run = form_run(port=browser_form.DEFAULT_PORT)
    moved = any("Port 7998 is busy" in m for m in run.messages)
    assert (run.port == 7998) != moved
    assert run.submit(GOOD_KEY).status == 200
    run.wait()


def test_announce_says_what_it_waits_for(form_run):
    run = form_run()
    text = "\n".join(run.messages)
    assert "OpenAI API key for openai (default)" in text
    assert re.search(r"http://127\.0\.0\.1:\d+/login/[A-Za-z0-9_-]{43}$", run.url)


def test_open_browser_uses_BROWSER_without_private_variables(form_run, tmp_path, monkeypatch):
    record = tmp_path / "browser-args"
    env_record = tmp_path / "browser-env"
    fake_browser = tmp_path / "fake-browser"
    fake_browser.write_text(
        f"#!/bin/sh\nenv > '{env_record}.tmp'\nprintf '%s\\n' \"$@\" > '{record}.tmp'\n"
        f"mv '{env_record}.tmp' '{env_record}'\nmv '{record}.tmp' '{record}'\n"
    )
    fake_browser.chmod(fake_browser.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("BROWSER", f"{fake_browser} %s")
    monkeypatch.setenv("AUTHSOME_PASSPHRASE", "hunter2-do-not-leak")
    monkeypatch.setenv("VAULT_TOKEN", "s.vault-do-not-leak")
    monkeypatch.setenv("BAO_TOKEN", "s.bao-do-not-leak")
    run = form_run(open_browser=True)
    deadline = time.monotonic() + 15
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert record.read_text().splitlines() == [run.url]
    env_text = env_record.read_text()
    assert "PATH=" in env_text
    assert "do-not-leak" not in env_text
    assert run.submit(GOOD_KEY).status == 200
    run.wait()
    assert run.result == {"api_key": GOOD_KEY}


def spawn_waiter(timeout: str, **env: str) -> pexpect.spawn:
    return pexpect.spawn(
        sys.executable,
        ["-c", WAITER, timeout],
        env=child_env(**env),
        encoding="utf-8",
        timeout=20,
        dimensions=(24, 200),
    )


@pytest.mark.parametrize("no_color", [False, True])
def test_countdown_on_a_terminal_then_timeout(no_color):
    child = spawn_waiter("1", **({"NO_COLOR": "1"} if no_color else {}))
    transcript = io.StringIO()
    child.logfile_read = transcript
    child.expect(r"http://127\.0\.0\.1:\d+/login/\S+")
    child.expect(r"Waiting for the OpenAI API key for openai \(default\) \.\.\. 0:0\d left \(Ctrl-C to cancel\)")
    child.expect(r"InputTimeoutError 8: Timed out after 0:01 waiting for the OpenAI API key for openai \(default\)\.")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 8
    text = transcript.getvalue()
    assert "Traceback" not in text
    assert "\r\x1b[2K" in text  # redrawn in place
    assert ("\x1b[2m" in text) is not no_color  # dim only when NO_COLOR is unset


def test_ctrl_c_cancels_and_closes_the_socket():
    child = spawn_waiter("60")
    child.expect(r"http://127\.0\.0\.1:(\d+)/login/\S+")
    port = int(child.match.group(1))
    child.expect("left")  # the countdown runs: we are waiting
    child.sendintr()
    child.expect(r"CancelledError 8: Cancelled while waiting for the OpenAI API key for openai \(default\)")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 8
    assert "Traceback" not in child.before
    assert port_is_closed(port)
