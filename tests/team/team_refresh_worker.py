"""One of several processes (on two homes sharing a team vault) racing to refresh one OAuth connection.

Usage: python team_refresh_worker.py HOME ISSUER START_FILE
Composes the real pieces as ``authsome.flows.refresh.refresh_if_needed`` does, with
the team lock (this machine's file lock + the engine lease). Prints the access
token's SHA-256 on success, or ``ERROR <type> <exit code>``.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

from authsome.errors import AuthsomeError
from authsome.flows.endpoints import OAuthEndpoints
from authsome.flows.oauth_records import token_secrets, tokens_from_record
from authsome.flows.refresh import refresh_single_flight, refresh_tokens
from authsome.flows.tokens import ClientConfig, TokenSet
from authsome.home import Home
from authsome.vault.backend import open_store
from authsome.vault.openbao_lease import refresh_lock

PROVIDER, CONNECTION = "localauth", "default"


def main() -> int:
    home, issuer, start_file = Home(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    store = open_store(home, home.load_config())
    latest = {}

    def load() -> TokenSet:
        record = store.get_connection(PROVIDER, CONNECTION)
        latest["record"] = record
        return tokens_from_record(record)

    def save(tokens: TokenSet) -> None:
        current = latest["record"]
        store.put_connection(
            provider=PROVIDER,
            connection=CONNECTION,
            auth_type="oauth2",
            flow=current.flow,
            status="connected",
            secrets=token_secrets(tokens),
            expires_at=tokens.expires_at,
            scopes=list(tokens.scopes),
            metadata=current.metadata,
            expected_version=current.version,
            make_default_if_none=False,
        )

    def mark_expired() -> None:
        store.update_status(PROVIDER, CONNECTION, "expired", expected_version=latest["record"].version)

    endpoints = OAuthEndpoints(provider=PROVIDER, token_url=f"{issuer}/token")
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
            lock=lambda: refresh_lock(home.path, store, PROVIDER, CONNECTION),
        )
    except AuthsomeError as exc:
        print(f"ERROR {exc.type} {exc.exit_code}")
        print(exc.message, file=sys.stderr)
        return 0
    finally:
        store.close()
    print(hashlib.sha256(tokens.access_token.encode()).hexdigest())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
