"""One of several processes racing to read (and so refresh) the same connection.

Usage: python refresh_race_worker.py STATE_DIR ISSUER START_FILE
The tokens live in STATE_DIR/tokens.json (a stand-in for the vault record); the lock is
the real per-connection fcntl lock. Prints the access token's SHA-256 on success, or
``ERROR <type> <exit code>``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: make `tests` importable

from authsome.flows.tokens import TokenSet  # noqa: E402
from authsome.vault.locks import connection_lock  # noqa: E402
from tests.refresh_race import CONNECTION, PROVIDER, race_refresh  # noqa: E402


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

    def lock():
        return connection_lock(state_dir, PROVIDER, CONNECTION)

    return race_refresh(issuer, start_file, load=load, save=save, mark_expired=mark_expired, lock=lock)


if __name__ == "__main__":
    raise SystemExit(main())
