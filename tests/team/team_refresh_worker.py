"""One of several processes (on two homes sharing a team vault) racing to refresh one OAuth connection.

Usage: python team_refresh_worker.py HOME ISSUER START_FILE
Composes the real pieces as ``authsome.flows.refresh.refresh_if_needed`` does, with
the team lock (this machine's file lock + the engine lease). Prints the access
token's SHA-256 on success, or ``ERROR <type> <exit code>``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: make `tests` importable

from authsome.flows.oauth_records import token_secrets, tokens_from_record  # noqa: E402
from authsome.flows.tokens import TokenSet  # noqa: E402
from authsome.home import Home  # noqa: E402
from authsome.vault.backend import open_store  # noqa: E402
from authsome.vault.openbao_lease import refresh_lock  # noqa: E402
from tests.refresh_race import CONNECTION, PROVIDER, race_refresh  # noqa: E402


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

    def lock():
        return refresh_lock(home.path, store, PROVIDER, CONNECTION)

    try:
        return race_refresh(issuer, start_file, load=load, save=save, mark_expired=mark_expired, lock=lock)
    finally:
        store.close()


if __name__ == "__main__":
    raise SystemExit(main())
