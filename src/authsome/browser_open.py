"""Opening a URL in the user's browser without handing it our secrets.

The standard library's ``webbrowser`` honours ``$BROWSER`` and never runs a
shell, but it starts the browser with this process's environment, which may
hold ``AUTHSOME_PASSPHRASE`` or a ``VAULT_TOKEN``. So it runs in a small child
whose environment has those removed; the URL (a one-time token at most, never
a credential) is that child's argument, as for any browser launch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

PRIVATE_ENV_PREFIXES = ("AUTHSOME_", "VAULT_", "BAO_")


def open_in_browser(url: str) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(PRIVATE_ENV_PREFIXES)}
    code = "import sys, webbrowser; webbrowser.open(sys.argv[1], new=2)"
    try:
        child = subprocess.Popen(
            [sys.executable, "-I", "-c", code, url],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        return  # the URL is on screen; the user can open it
    # Reap it in the background: some browser commands only return when the browser exits.
    threading.Thread(target=child.wait, name="authsome-browser-opener", daemon=True).start()
