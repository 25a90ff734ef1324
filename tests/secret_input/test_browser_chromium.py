"""The browser form driven by a real headless Chromium (Debian's /usr/bin/chromium)."""

from __future__ import annotations

import os
from html import escape

import pytest

from tests.e2e.oauth.browser_support import CHROMIUM, CHROMIUM_ARGS

from .conftest import BAD_KEY, ERROR, GOOD_KEY, HINT

# A hostname an attacker controls that resolves to loopback: DNS rebinding.
ARGS = [*CHROMIUM_ARGS, "--host-resolver-rules=MAP rebind.test 127.0.0.1"]

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium package")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=30_000)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    yield pg
    context.close()


def test_bad_key_then_good_key(form_run, page):
    run = form_run()
    first = page.goto(run.url)
    assert first.status == 200
    assert "OpenAI" in page.inner_text("h1")
    assert "default" in page.inner_text(".conn")
    assert HINT in page.inner_text("main")
    key_input = page.locator("input[name=api_key]")
    assert key_input.get_attribute("type") == "password"
    assert key_input.get_attribute("autocomplete") == "off"

    # A mistyped key: the page shows the error and the hint, never the key.
    key_input.fill(BAD_KEY)
    with page.expect_response(lambda r: r.request.method == "POST") as rejected:
        page.click("button[type=submit]")
    assert rejected.value.status == 400
    assert page.inner_text("#error-message") == ERROR
    assert page.inner_text("#error-hint") == HINT
    assert BAD_KEY not in rejected.value.text()
    assert escape(BAD_KEY) not in page.content() and BAD_KEY not in page.content()
    assert page.input_value("input[name=api_key]") == ""
    assert run.running and run.result is None

    # Corrected on the same page (the link is still valid).
    page.fill("input[name=api_key]", GOOD_KEY)
    with page.expect_response(lambda r: r.request.method == "POST") as accepted:
        page.click("button[type=submit]")
    assert accepted.value.status == 200
    assert "You can close this tab" in page.inner_text("main")
    assert GOOD_KEY not in accepted.value.text()
    assert GOOD_KEY not in page.content()
    run.wait()
    assert run.error is None
    assert run.result == {"api_key": GOOD_KEY}


def test_page_from_another_origin_cannot_submit(form_run, page):
    """Even with both tokens leaked, a form on a foreign origin is refused (Origin check)."""
    run = form_run()
    csrf = run.csrf()
    attacker_page = (
        "<!DOCTYPE html><html><body>"
        f'<form method="post" action="{run.url}">'
        f'<input type="hidden" name="csrf_token" value="{csrf}">'
        f'<input type="hidden" name="api_key" value="{GOOD_KEY}">'
        '<button type="submit">win a prize</button></form></body></html>'
    )
    page.route(
        "http://attacker.test/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body=attacker_page),
    )
    page.goto("http://attacker.test/prize.html")
    with page.expect_response(lambda r: r.request.method == "POST") as refused:
        page.click("button[type=submit]")
    assert refused.value.status == 403
    assert run.running and run.result is None


def test_dns_rebinding_name_is_refused(form_run, page):
    run = form_run()
    response = page.goto(f"http://rebind.test:{run.port}{run.path}")
    assert response.status == 403
    assert "csrf_token" not in page.content()
    assert run.running and run.result is None
