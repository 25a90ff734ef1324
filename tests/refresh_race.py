"""The common part of the refresh-race worker scripts: wait for the start signal, refresh once, print the outcome.

The workers (tests/oauth/refresh_race_worker.py, tests/team/team_refresh_worker.py) differ only
in their store and lock; both run the real single-flight refresh against the test server's
``localauth`` provider. Printed: the access token's SHA-256 on success, or ``ERROR <type> <exit code>``.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from authsome.errors import AuthsomeError
from authsome.flows.endpoints import OAuthEndpoints
from authsome.flows.refresh import refresh_single_flight, refresh_tokens
from authsome.flows.tokens import ClientConfig, TokenSet

PROVIDER, CONNECTION = "localauth", "default"
START_WAIT_SECONDS = 30


def race_refresh(
    issuer: str,
    start_file: Path,
    *,
    load: Callable[[], TokenSet],
    save: Callable[[TokenSet], None],
    mark_expired: Callable[[], None],
    lock: Callable[[], AbstractContextManager],
) -> int:
    """The worker's exit code: 3 if the start signal never came, else 0 (the outcome is on stdout)."""
    endpoints = OAuthEndpoints(provider=PROVIDER, token_url=f"{issuer}/token")
    deadline = time.monotonic() + START_WAIT_SECONDS
    while not start_file.exists():  # start together
        if time.monotonic() > deadline:
            return 3
        time.sleep(0.005)
    try:
        tokens = refresh_single_flight(
            load=load,
            refresh=lambda old: refresh_tokens(
                endpoints, ClientConfig("authsome-public"), old, label="localauth (default)", login_command="x"
            ),
            save=save,
            mark_expired=mark_expired,
            lock=lock,
        )
    except AuthsomeError as exc:
        print(f"ERROR {exc.type} {exc.exit_code}")
        print(exc.message, file=sys.stderr)
        return 0
    print(hashlib.sha256(tokens.access_token.encode()).hexdigest())
    return 0
