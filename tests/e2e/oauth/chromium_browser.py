"""A real browser for the CLI tests: headless Chromium (Debian's /usr/bin/chromium) via Playwright.

Used as ``BROWSER="python chromium_browser.py %s"``. It opens the authorization URL,
signs in on the server's real login page, approves (or cancels, with
CHROMIUM_CONSENT=deny) on its real consent page, and waits for authsome's callback
page. Every request to a non-loopback address is blocked (the pages @import a web
font). Writes JSON lines to FAKE_BROWSER_LOG: the pages seen and the final page's text.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from urllib.parse import urlsplit

ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 30_000


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def log(entry: dict) -> None:
    path = os.environ.get("FAKE_BROWSER_LOG")
    if path:
        with open(path, "a") as handle:
            handle.write(json.dumps(entry) + "\n")


def main() -> int:
    from playwright.sync_api import sync_playwright

    url = sys.argv[1]
    deny = os.environ.get("CHROMIUM_CONSENT") == "deny"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            blocked: list[str] = []

            def route(r):
                if is_loopback(r.request.url):
                    return r.continue_()
                blocked.append(urlsplit(r.request.url).hostname or "")
                return r.abort()

            page.route("**/*", route)
            page.goto(url)
            log({"page": "login", "title": page.title()})
            page.fill('input[name="login"]', os.environ.get("CHROMIUM_LOGIN", "carol"))
            page.fill('input[name="password"]', "any-password")
            page.click('button[type="submit"]')
            page.wait_for_selector('input[name="prompt"][value="consent"]', state="attached")
            log({"page": "consent", "text": page.inner_text("body")[:500]})
            if deny:
                page.click("a[href*='/abort']")
            else:
                page.click('button[type="submit"]')
            page.wait_for_url(lambda u: urlsplit(u).path == "/callback")
            page.wait_for_load_state()
            screenshot = os.environ.get("CHROMIUM_SCREENSHOT")
            if screenshot:
                page.screenshot(path=screenshot)
            log({"page": "callback", "text": page.inner_text("body"), "blocked": sorted(set(blocked))})
        except Exception as exc:  # noqa: BLE001 - recorded for the test
            log({"error": repr(exc)})
            return 1
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
