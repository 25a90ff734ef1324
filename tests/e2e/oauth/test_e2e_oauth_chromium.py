"""The real login and consent pages of the authorization server, driven in headless Chromium."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from .browser_support import CHROMIUM

HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"), reason="Debian's chromium is not installed"
)


def chromium_env(tmp_path: Path, **extra: str) -> dict:
    return {"BROWSER": f"{sys.executable} {HERE / 'chromium_browser.py'} %s", **extra}


def test_pkce_login_through_the_real_pages_in_chromium(oauth_cli, tmp_path):
    oauth_cli.server.configure(interaction="html")
    shot = tmp_path / "callback.png"
    proc = oauth_cli.login(
        "--client-id", "authsome-public", env=chromium_env(tmp_path, CHROMIUM_SCREENSHOT=str(shot)), timeout=120
    )
    events = oauth_cli.browser_events(until_pages={"callback"})
    assert proc.returncode == 0, (proc.stderr, events)
    pages = [e.get("page") for e in events]
    assert pages == ["login", "consent", "callback"], events
    assert "Signed in" in events[-1]["text"]
    assert "fonts.googleapis.com" in events[-1]["blocked"]  # nothing left the machine
    assert shot.stat().st_size > 0
    tokens = oauth_cli.stored_tokens()
    info = oauth_cli.server.introspect(tokens["access_token"])
    assert info["active"] is True and info["sub"] == "carol"  # the account typed on the login page


def test_cancel_on_the_real_consent_page_exits_8(oauth_cli, tmp_path):
    oauth_cli.server.configure(interaction="html")
    proc = oauth_cli.login(
        "--client-id", "authsome-public", env=chromium_env(tmp_path, CHROMIUM_CONSENT="deny"), timeout=120
    )
    events = oauth_cli.browser_events(until_pages={"callback"})
    assert proc.returncode == 8, (proc.stderr, events)
    assert "denied" in proc.stderr
    assert "not completed" in events[-1]["text"] and "access_denied" in events[-1]["text"]
    assert json.loads(oauth_cli("list", "--json").stdout) == []
