"""One of several processes racing to read (and so refresh) the same connection.

Usage: python refresh_race_worker.py STATE_DIR ISSUER START_FILE
The tokens live in STATE_DIR/tokens.json (a stand-in for the vault record); the lock is
the real per-connection fcntl lock. Prints the access token's SHA-256 on success, or
``ERROR <type> <exit code>``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
from pathlib import Path

from authsome.errors import AuthsomeError
from authsome.flows.endpoints import OAuthEndpoints
from authsome.flows.refresh import refresh_single_flight, refresh_tokens
from authsome.flows.tokens import ClientConfig, TokenSet
from authsome.vault.locks import connection_lock


def main() -> int:
    state_dir, issuer, start_file = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    store = state_dir / "tokens.json"

    def load() -> TokenSet:
        data = json.loads(store.read_text())
        data["scopes"] = tuple(data["scopes"])
        return TokenSet(**data)

    def save(tokens: TokenSet) -> None:
        tmp = store.with_suffix(".tmp")
        with open(tmp, "w") as handle:
            json.dump(dataclasses.asdict(tokens), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, store)

    def mark_expired() -> None:
        (state_dir / "expired").write_text("1")

    endpoints = OAuthEndpoints(provider="localauth", token_url=f"{issuer}/token")
    deadline = time.monotonic() + 30
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
            lock=lambda: connection_lock(state_dir, "localauth", "default"),
        )
    except AuthsomeError as exc:
        print(f"ERROR {exc.type} {exc.exit_code}")
        return 0
    print(hashlib.sha256(tokens.access_token.encode()).hexdigest())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
