"""Show a URL to the user and open it in their browser, safely."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from authsome.errors import UsageError
from authsome.loopback import is_loopback_host

Announce = Callable[[str], None]


def check_browser_url(url: str) -> str:
    """Only ``https:`` URLs (or ``http:`` to a loopback address) are ever handed to a browser."""
    parts = urlsplit(url)
    ok = (parts.scheme == "https" and parts.hostname) or (parts.scheme == "http" and is_loopback_host(parts.hostname))
    if not ok or any(ch in url for ch in "\r\n\t\x00 "):
        raise UsageError(
            "Refusing to open a sign-in URL that is not a plain https:// URL.",
            hint="Check the provider's oauth.authorization_url.",
        )
    return url


def show_and_open(
    url: str,
    *,
    announce: Announce,
    open_browser: bool = True,
    opener: Callable[[str], object] | None = None,
) -> None:
    """Print ``url`` (so it can be copied) and open it with the standard library.

    ``webbrowser`` honours ``$BROWSER`` and never runs a shell. It is started on a
    daemon thread because some browser commands wait until the browser exits,
    and the callback must be served meanwhile.
    """
    check_browser_url(url)
    announce(f"Open this URL in a browser to sign in:\n  {url}")
    if not open_browser:
        return
    if opener is not None:  # a library caller's own way to show the page (tests, GUIs)
        opener(url)
        return

    from authsome.browser_open import open_in_browser

    open_in_browser(url)  # in a child without AUTHSOME_*/VAULT_*/BAO_* variables
