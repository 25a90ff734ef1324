"""Plays the user's browser for the CLI tests: ``BROWSER="python fake_browser.py %s"``.

authsome opens the authorization URL through ``webbrowser``, which runs this script.
It follows the authorization redirects (the test server answers login and consent
by its interaction mode) and requests the loopback callback, as a browser would.

Environment: FAKE_BROWSER_ISSUER (the server), FAKE_BROWSER_LOG (JSON lines written
here), FAKE_BROWSER_MODE: ``approve`` (default), ``tamper-state`` (changes ``state``),
``replay:<file>`` (delivers the callback query recorded in <file>'s first line instead).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.e2e.oauth.browser_support import log  # noqa: E402
from tests.oauth_server.oauth_test_server import OAuthTestServer  # noqa: E402


def main() -> int:
    url = sys.argv[1]
    mode = os.environ.get("FAKE_BROWSER_MODE", "approve")
    server = OAuthTestServer.attach(os.environ["FAKE_BROWSER_ISSUER"])
    try:
        callback = server.authorize_until_callback(url)
        if mode == "tamper-state":
            callback = re.sub(r"state=[^&]+", "state=forged-by-the-test", callback)
        elif mode.startswith("replay:"):
            recorded = json.loads(Path(mode.split(":", 1)[1]).read_text().splitlines()[0])["callback"]
            callback = callback.split("?")[0] + "?" + recorded.split("?", 1)[1]
        log({"authorize": url, "callback": callback})
        response = server.deliver(callback)
        log({"status": response.status_code, "page": response.text})
    except Exception as exc:  # noqa: BLE001 - recorded for the test to see
        log({"error": repr(exc)})
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
