"""`authsome login` as a person uses it: the browser form in real headless Chromium, getpass on a real pty."""

import re
import subprocess
import time
from pathlib import Path

import pexpect

from tests.conftest import AUTHSOME, canary_key
from tests.e2e.oauth.browser_support import CHROMIUM, CHROMIUM_ARGS


def _wait_for(path: Path, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def test_browser_form_login_through_the_cli(cli, tmp_path):
    from playwright.sync_api import sync_playwright

    # $BROWSER is honoured by the standard library: a stand-in that records the URL it was asked to open.
    url_file = tmp_path / "url"
    opener = tmp_path / "open-browser"
    opener.write_text(f"#!/bin/sh\nprintf '%s' \"$1\" > {url_file}\n")
    opener.chmod(0o755)
    env = dict(cli.env, DISPLAY=":99", BROWSER=str(opener))
    proc = subprocess.Popen([AUTHSOME, "login", "openai", "--connection", "browser", "--timeout", "60"],
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    key = canary_key()
    try:
        url = _wait_for(url_file)
        assert re.match(r"http://127\.0\.0\.1:\d+/", url)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(url)
            assert "OpenAI" in page.content()
            field = page.locator("input[type=password]")
            field.fill("sk-short")
            page.locator("button[type=submit], input[type=submit]").first.click()
            page.wait_for_load_state()
            text = page.content()
            assert "This does not look like a valid OpenAI API key." in text
            assert "sk-short" not in text
            page.locator("input[type=password]").fill(key)
            page.locator("button[type=submit], input[type=submit]").first.click()
            page.wait_for_load_state()
            assert key not in page.content()
            browser.close()
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Successfully logged in to openai (browser)." in err
    assert url in err  # the URL is printed too
    assert key not in out + err
    assert cli("get", "openai", "--connection", "browser", "--field", "api_key", "--show-secret").stdout == key + "\n"


def test_masked_terminal_login_on_a_real_pty(cli):
    key = canary_key()
    child = pexpect.spawn(AUTHSOME, ["login", "openai", "--no-browser"], env=cli.env, encoding="utf-8", timeout=30)
    try:
        child.expect("API key")
        child.sendline(key)
        child.expect(pexpect.EOF)
        transcript = child.before
    finally:
        child.close()
    assert child.exitstatus == 0, transcript
    assert "Successfully logged in to openai (default)." in transcript
    assert key not in transcript  # masked: never echoed
    assert cli("get", "openai", "--field", "api_key", "--show-secret").stdout == key + "\n"


def test_no_display_falls_back_to_terminal_and_rejects_bad_key(cli):
    child = pexpect.spawn(AUTHSOME, ["login", "openai"], env=cli.env, encoding="utf-8", timeout=30)
    try:
        child.expect("API key")
        child.sendline("sk-bad")
        child.expect(pexpect.EOF)
        transcript = child.before
    finally:
        child.close()
    assert child.exitstatus == 4
    assert "This does not look like a valid OpenAI API key." in transcript
    assert cli("list").stdout == ""
