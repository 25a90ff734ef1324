"""``probe()`` for ``authsome doctor``, and the exit-9 messages naming the cause."""

from __future__ import annotations

from authsome.sandbox import probe
from authsome.sandbox.availability import unavailable


def test_probe_builds_a_real_sandbox_here():
    ok, detail = probe()
    assert ok, detail
    assert "bubblewrap" in detail


def test_probe_without_bubblewrap_says_how_to_install_it(monkeypatch):
    monkeypatch.setenv("AUTHSOME_BWRAP", "")
    ok, detail = probe()
    assert not ok
    assert "not installed" in detail and "apt-get install bubblewrap" in detail


def test_probe_with_a_broken_bubblewrap_reports_its_words(monkeypatch, tmp_path):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("AUTHSOME_BWRAP", str(fake))
    ok, detail = probe()
    assert not ok
    assert "No permissions to create new namespace" in detail


def test_unavailable_is_exit_9_and_says_the_child_did_not_start():
    err = unavailable(bwrap=None)
    assert err.exit_code == 9 and err.type == "isolation_unavailable"
    assert "not started" in err.message and err.hint
