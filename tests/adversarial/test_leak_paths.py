"""Drive the paths a secret takes, with canaries, so the session leak scanner has something to find.

Each test stores or submits canaries through the real CLI or the real servers, then asks the
scanner (``leakhook.check_now``) right away, besides the automatic check at teardown: error
messages, a refused key, passphrase mode, ``run``'s child, the browser form's answers, and the
vault's WAL while it still holds the new pages.
"""

from __future__ import annotations

import sqlite3
import sys

from authsome.client import Authsome
from authsome.errors import AuthsomeError
from tests.adversarial import leakhook
from tests.conftest import canary_key


def assert_clean() -> None:
    hits = leakhook.check_now()
    assert hits == [], [str(h) for h in hits]


def test_refused_keys_are_not_echoed(cli):
    bad = "xx-" + canary_key("")  # fails OpenAI's key_pattern
    proc = cli("login", "openai", "--stdin", input=bad + "\n")
    assert proc.returncode == 4, proc.stderr
    assert "Hint:" in proc.stderr
    proc = cli("login", "openai", "--stdin", "--json", input=bad + "\n")
    assert proc.returncode == 4
    with_newline = canary_key() + "\nsecond-line-" + canary_key("")
    proc = cli("login", "openai", "--stdin", input=with_newline)
    assert proc.returncode == 2, proc.stderr  # two lines for one field: a usage error, nothing stored
    assert_clean()


def test_library_errors_carry_no_secret(home):
    from authsome.flows.api_key import api_key_request

    client = Authsome(home)
    try:
        request = api_key_request(client.provider("openai"), "default")
        for bad in ("nope-" + canary_key(""), canary_key() + " ", canary_key("sk-") + "\x00"):
            try:
                request.validate({"api_key": bad})
            except AuthsomeError as exc:
                leakhook.SCANNER.record_exception(exc)
                leakhook.SCANNER.record("error-message", "to_dict", repr(exc.to_dict()))
            else:
                raise AssertionError("a malformed key was accepted")
    finally:
        client.close()
    assert_clean()


def test_passphrase_mode_keeps_the_passphrase_and_keys_private(cli):
    passphrase = canary_key("pass-")
    env = {"AUTHSOME_PASSPHRASE": passphrase}
    assert cli("init", "--key-source", "passphrase", env=env).returncode == 0
    key = canary_key()
    assert cli("login", "openai", "--stdin", input=key + "\n", env=env).returncode == 0
    assert cli("get", "openai", env=env).returncode == 0
    assert cli("list", env=env).returncode == 0
    assert cli("doctor", env=env).returncode == 0
    wrong = cli(
        "get", "openai", "--field", "api_key", "--show-secret", env={"AUTHSOME_PASSPHRASE": canary_key("pass-")}
    )
    assert wrong.returncode == 7, wrong.stderr
    leakhook.SCANNER.record("cli-output", "stdout of get with a wrong passphrase", wrong.stdout)
    # run: the child never sees the passphrase or the key (the sampler reads its environment too).
    script = "import os, time; time.sleep(0.5); print(sorted(os.environ.items()))"
    child = cli("run", "--", sys.executable, "-c", script, env=env)
    assert child.returncode == 0, child.stderr
    assert "authsome-proxy-managed" in child.stdout
    assert passphrase not in child.stdout and key not in child.stdout
    assert_clean()


def test_browser_form_answers_never_hold_the_value(form_run_factory):
    run = form_run_factory()
    for bad in ("bad-" + canary_key(""), canary_key() + "<script>"):
        answer = run.submit(bad)
        leakhook.SCANNER.record("form-response", "answer to a refused submit", answer.body)
        assert answer.status == 400
    good = canary_key()
    answer = run.submit(good)
    leakhook.SCANNER.record("form-response", "answer to the accepted submit", answer.body)
    assert answer.status == 200
    run.wait()
    assert run.result == {"api_key": good}
    assert_clean()


def test_wal_holds_no_plaintext_while_it_exists(cli, home):
    assert cli("init", "--key-source", "file").returncode == 0
    cli.login_stdin("openai", canary_key(), "--connection", "first")
    # An open reader keeps SQLite from checkpointing and deleting the WAL at the writers' exit.
    reader = sqlite3.connect(home / "vault.db")
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM connections").fetchone()
        keys = [canary_key() for _ in range(3)]
        for i, key in enumerate(keys):
            cli.login_stdin("openai", key, "--connection", f"w{i}")
        cli("login", "openai", "--stdin", "--force", "--connection", "w0", input=canary_key() + "\n")
        cli("logout", "openai", "--connection", "w1")
        wal = home / "vault.db-wal"
        assert wal.exists() and wal.stat().st_size > 0
        hit = leakhook.SCANNER.scan_file(wal)
        assert hit is None, str(hit)
    finally:
        reader.close()
    assert_clean()
