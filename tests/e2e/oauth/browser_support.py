"""What the scripted browsers share: Debian's Chromium with its headless flags, and the log the tests read.

The browser scripts (``fake_browser.py``, ``chromium_browser.py``) run as ``python <script> URL``
and write JSON lines to FAKE_BROWSER_LOG; tests/secret_input launches the same Chromium.
"""

from __future__ import annotations

import json
import os

CHROMIUM = "/usr/bin/chromium"
# Headless and quiet: no first-run pages, no background fetches or updates, no QUIC.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def log(entry: dict) -> None:
    """Append ``entry`` as one JSON line to FAKE_BROWSER_LOG (if set), where the test reads it."""
    path = os.environ.get("FAKE_BROWSER_LOG")
    if path:
        with open(path, "a") as handle:
            handle.write(json.dumps(entry) + "\n")
