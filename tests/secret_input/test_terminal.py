"""Masked terminal input through a real pseudo-terminal (pexpect)."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys

import pexpect

from .conftest import BAD_KEY, ERROR, GOOD_KEY, HINT, child_env

ASKER = f"""
import hashlib, re, sys
from authsome.errors import AuthsomeError, InvalidCredentialError
from authsome.secret_input.request import FieldSpec, SecretRequest
from authsome.secret_input.terminal import capture_in_terminal, terminal_available

def validate(values):
    if not re.fullmatch(r"sk-[A-Za-z0-9_-]{{20,}}", values["api_key"]):
        raise InvalidCredentialError({ERROR!r}, {HINT!r})

fields = [FieldSpec("api_key", "API key", True, {HINT!r})]
if "--with-account" in sys.argv:
    fields.insert(0, FieldSpec("account", "account email", False, None))
request = SecretRequest("openai", "OpenAI", "default", fields, validate)
print("terminal_available", terminal_available(), file=sys.stderr, flush=True)
try:
    values = capture_in_terminal(request)
except AuthsomeError as err:
    print(f"Error: {{err.message}}", file=sys.stderr)
    if err.hint:
        print(f"Hint: {{err.hint}}", file=sys.stderr)
    sys.exit(err.exit_code)
# Never print the key: the test checks it is nowhere in the terminal transcript.
for name, value in sorted(values.items()):
    shown = value if name == "account" else hashlib.sha256(value.encode()).hexdigest()
    print(f"GOT {{name}}={{shown}}", flush=True)
"""

PROMPT = "OpenAI API key for openai (default): "


def spawn(*args: str, shell_tail: str = "") -> tuple[pexpect.spawn, io.StringIO]:
    transcript = io.StringIO()
    if shell_tail:
        child = pexpect.spawn(
            "/bin/sh",
            ["-c", f'"$0" -c "$1" {shell_tail}', sys.executable, ASKER],
            env=child_env(),
            encoding="utf-8",
            timeout=20,
        )
    else:
        child = pexpect.spawn(sys.executable, ["-c", ASKER, *args], env=child_env(), encoding="utf-8", timeout=20)
    child.logfile_read = transcript
    return child, transcript


def finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def test_masked_key_is_accepted_and_never_echoed():
    child, transcript = spawn()
    child.expect("terminal_available True")
    child.expect(HINT.replace("(", r"\(").replace(")", r"\)").replace(".", r"\."))
    child.expect_exact(PROMPT)
    child.sendline(GOOD_KEY)
    child.expect_exact(f"GOT api_key={hashlib.sha256(GOOD_KEY.encode()).hexdigest()}")
    assert finish(child) == 0
    assert GOOD_KEY not in transcript.getvalue()
    assert GOOD_KEY[:8] not in transcript.getvalue()


def test_bad_key_is_refused_with_message_and_hint():
    child, transcript = spawn()
    child.expect_exact(PROMPT)
    child.sendline(BAD_KEY)
    child.expect_exact(f"Error: {ERROR}")
    child.expect_exact(f"Hint: {HINT}")
    assert finish(child) == 4
    assert BAD_KEY not in transcript.getvalue()
    assert "GOT" not in transcript.getvalue()


def test_empty_key_is_refused():
    child, _ = spawn()
    child.expect_exact(PROMPT)
    child.sendline("   ")
    child.expect_exact("Error: No API key was entered for openai (default).")
    assert finish(child) == 4


def test_ctrl_c_and_ctrl_d_cancel():
    for send in ("intr", "eof"):
        child, transcript = spawn()
        child.expect_exact(PROMPT)
        child.sendintr() if send == "intr" else child.sendeof()
        child.expect_exact(
            "Error: Cancelled while asking for the OpenAI API key for openai (default); nothing was stored."
        )
        assert finish(child) == 8, send
        assert "Traceback" not in transcript.getvalue()


def test_plain_field_is_read_then_secret_masked():
    child, transcript = spawn("--with-account")
    child.expect_exact("OpenAI account email for openai (default): ")
    child.sendline("me@example.test")
    child.expect_exact(PROMPT)
    child.sendline(GOOD_KEY)
    child.expect_exact("GOT account=me@example.test")
    assert finish(child) == 0
    text = transcript.getvalue()
    assert text.count("me@example.test") == 2  # typed (echoed) once, printed once
    assert GOOD_KEY not in text


def test_prompts_go_to_the_terminal_not_stdout(tmp_path):
    out = tmp_path / "stdout.txt"
    child, transcript = spawn(shell_tail=f"> '{out}'")
    child.expect_exact(PROMPT)
    child.sendline(GOOD_KEY)
    assert finish(child) == 0
    assert out.read_text() == f"GOT api_key={hashlib.sha256(GOOD_KEY.encode()).hexdigest()}\n"
    assert GOOD_KEY not in transcript.getvalue()


def test_no_terminal_gives_no_input_error():
    proc = subprocess.run(
        [sys.executable, "-c", ASKER],
        env=child_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=20,
        start_new_session=True,  # no controlling terminal
    )
    assert proc.returncode == 5
    assert "terminal_available False" in proc.stderr
    assert "Error: No terminal to ask for the OpenAI API key for openai (default)." in proc.stderr
    assert "--stdin" in proc.stderr
