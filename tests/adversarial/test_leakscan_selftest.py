"""The leak scanner proves itself: a canary planted at every scan site, in every encoding, is found.

Each test uses its own ``LeakScanner`` (never the session one), so planted canaries do not fail
the run; the canaries are made with ``secrets`` directly for the same reason.
"""

from __future__ import annotations

import base64
import os
import secrets
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.adversarial import leakhook
from tests.adversarial.leakscan import SITES, LeakScanner, ProcessSampler, TempWatcher, encoded_forms, is_authsome


def planted() -> str:
    # Not canary_key()'s shape, so the session-wide scanner (which also runs now) ignores it.
    return "sk-planted" + secrets.token_hex(16)


def fresh(canary: str) -> LeakScanner:
    scanner = LeakScanner()
    scanner.add_canary(canary)
    return scanner


def test_clean_data_has_no_hit():
    canary = planted()
    scanner = fresh(canary)
    for data in (b"", b"sk-planted", b"api_key: [redacted]", os.urandom(4096), canary[:-1].encode()):
        assert scanner.find(data) is None, data


@pytest.mark.parametrize("prefix", [b"", b"x", b"xy", b"user:", b"Bearer "])
def test_every_encoding_is_found_at_every_alignment(prefix):
    canary = planted()
    scanner = fresh(canary)
    raw = prefix + canary.encode() + b"\n"
    assert scanner.find(b"...." + raw) == "raw"
    assert scanner.find(base64.b64encode(raw)) is not None
    assert scanner.find(base64.urlsafe_b64encode(raw)) is not None
    weird = "ab/+ &%=" + canary  # a key with characters URL encoding changes
    scanner.add_canary(weird)
    assert scanner.find(quote(weird, safe="")) is not None
    assert {name for name, _ in encoded_forms(canary)} >= {"raw", "base64@0", "base64@1", "base64@2"}


def test_unregistered_raw_canary_is_still_found():
    # Another xdist worker's canary: the raw shape alone is enough.
    assert LeakScanner().find(b"value=sk-canary" + secrets.token_hex(16).encode()) == "raw"


def test_cli_output_site(cli):
    canary = planted()
    scanner = fresh(canary)
    # A real CLI call whose stderr echoes the canary: an unknown provider named after it.
    proc = cli("get", canary)
    assert proc.returncode == 3
    before = leakhook.SCANNER
    leakhook.SCANNER = scanner
    try:
        leakhook.record_cli(["authsome", "get", canary], None, proc)
        leakhook.record_cli(["authsome", "export", "x"], None, proc)  # export output: not scanned
    finally:
        leakhook.SCANNER = before
    hits = scanner.take_hits()
    sites = {h.site for h in hits}
    assert sites == {"cli-output", "process-argv"}, hits
    assert all("export" not in h.where for h in hits if h.site == "cli-output")


def test_process_argv_and_environ_sites(tmp_path):
    canary = planted()
    scanner = fresh(canary)
    # A stand-in for authsome (named so) whose child inherits its whole environment: a leak. A
    # plain shell's child inherits the same variable: the test's own choice, not reported. The
    # base64 form of the canary rides in a grandchild's argv: reported wherever it is.
    fake = tmp_path / "authsome"
    fake.write_text("import subprocess, sys\nsubprocess.run(['sleep', '1.5'])\n")
    b64 = base64.b64encode(b"k:" + canary.encode()).decode()
    script = f"sleep 1.5 & {sys.executable} -c 'import time; time.sleep(1.5)' {b64} & {sys.executable} {fake}; wait"
    sampler = ProcessSampler(scanner, interval=0.01).start()
    proc = subprocess.Popen(["sh", "-c", script], env=dict(os.environ, PLANTED=canary))
    try:
        proc.wait(timeout=20)
    finally:
        sampler.stop()
    hits = scanner.take_hits()
    assert {h.site for h in hits} == {"process-argv", "process-environ"}, hits
    environ_hits = [h for h in hits if h.site == "process-environ"]
    assert environ_hits and all(h.where.endswith("sleep 1.5 ") and "depth 3" in h.where for h in environ_hits), hits
    assert any(h.encoding.startswith("base64") for h in hits if h.site == "process-argv"), hits
    assert sampler.samples > 10


def test_authsome_processes_are_recognised():
    assert is_authsome(b"/venv/bin/python3.11\0/venv/bin/authsome\0get\0openai\0")
    assert is_authsome(b"/venv/bin/authsome\0run\0--\0sh\0")
    assert is_authsome(b"python\0-m\0authsome.cli\0list\0")
    assert not is_authsome(b"sh\0-c\0authsome get x\0")
    assert not is_authsome(b"dbus-run-session\0--\0bash\0")
    assert not is_authsome(None)


def test_home_files_audit_log_and_vault_bytes(tmp_path):
    canary = planted()
    scanner = fresh(canary)
    home = tmp_path / "home"
    home.mkdir()
    (home / "audit.log").write_text('{"event":"login","detail":"' + canary + '"}\n')
    (home / "providers").mkdir()
    (home / "providers" / "debug.log").write_bytes(quote(canary).encode())
    db = sqlite3.connect(home / "vault.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (v TEXT)")
    db.execute("INSERT INTO t VALUES (?)", (base64.b64encode(canary.encode()).decode(),))
    db.commit()
    # While this connection is open the -wal file holds the row's bytes.
    assert (home / "vault.db-wal").exists()
    assert scanner.scan_tree(home) >= 3
    db.close()
    hits = scanner.take_hits()
    by_where = {Path(h.where).name: h for h in hits}
    assert by_where["audit.log"].site == "audit-log"
    assert by_where["debug.log"].site == "home-file"
    assert by_where["vault.db-wal"].site == "vault-db"


def test_temp_file_site():
    canary = planted()
    scanner = fresh(canary)
    watcher = TempWatcher(scanner, tempfile.gettempdir(), exclude=[])
    with tempfile.TemporaryDirectory(prefix="authsome-selftest-") as d:
        Path(d, "bundle.pem").write_text("-----\n" + canary + "\n")
        watcher.poll()
    hits = scanner.take_hits()
    assert [h.site for h in hits] == ["temp-file"], hits


def test_form_response_site(form_run_factory):
    canary = planted()
    scanner = fresh(canary)
    run = form_run_factory()
    # The real form server never echoes a submitted value; plant it as a broken server would.
    page = run.get()
    scanner.record("form-response", "GET form page", page.body)
    assert scanner.take_hits() == []
    scanner.record("form-response", "planted POST answer", page.body + canary.encode())
    assert [h.site for h in scanner.take_hits()] == ["form-response"]


def test_error_message_site():
    canary = planted()
    scanner = fresh(canary)
    try:
        raise ValueError(f"bad key {canary}")
    except ValueError as exc:
        hit = scanner.record_exception(exc)
    assert hit is not None and hit.site == "error-message"


def test_every_site_is_exercised_by_this_file():
    # Keep SITES and the tests above in step: a new site needs a planted test here that names it
    # (a site dropped from SITES fails the test that plants it: record() accepts only SITES).
    source = Path(__file__).read_text()
    unplanted = [site for site in SITES if f'"{site}"' not in source]
    assert unplanted == []
