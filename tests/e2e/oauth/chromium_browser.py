"""A real browser for the CLI tests: headless Chromium (Debian's /usr/bin/chromium) via Playwright.

Used as ``BROWSER="python chromium_browser.py %s"``. It opens the authorization URL,
signs in on the server's real login page, approves (or cancels, with
CHROMIUM_CONSENT=deny) on its real consent page, and waits for authsome's callback
page. Every request to a non-loopback address is blocked (the pages @import a web
font). Writes JSON lines to FAKE_BROWSER_LOG: the pages seen and the final page's text.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from authsome.loopback import is_loopback_host  # noqa: E402
from tests.e2e.oauth.browser_support import CHROMIUM, CHROMIUM_ARGS, log  # noqa: E402

TIMEOUT_MS = 30_000


def main() -> int:
    from playwright.sync_api import sync_playwright

    url = sys.argv[1]
    deny = os.environ.get("CHROMIUM_CONSENT") == "deny"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            blocked: list[str] = []

            def route(r):
                host = urlsplit(r.request.url).hostname
                if is_loopback_host(host):
                    return r.continue_()
                blocked.append(host or "")
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
