"""Opening the local vault of a home: first-time initialisation and the key source."""

from __future__ import annotations

import sys
import time

from authsome.errors import StoreError, UsageError
from authsome.home import CONFIG_VERSION, Home
from authsome.vault.sqlite_store import SqliteStore


def initialize_home(home: Home, *, key_source: str | None = None, notice=None, ask_passphrase=None) -> dict:
    """Create the home and fix its key source once. Returns the config (existing or new)."""
    from authsome.vault.keysource import KEY_SOURCES, new_key_config, usable_keyring_backend
    from authsome.vault.locks import file_lock  # only first-time setup locks: opening a vault must stay cheap

    if key_source is not None and key_source not in KEY_SOURCES:
        raise UsageError(f"Unknown key source '{key_source}'.", hint=f"Use one of: {', '.join(KEY_SOURCES)}.")
    home.ensure_dirs()
    with file_lock(home.path / ".init.lock", what="the authsome home"):
        config = home.load_config()
        if config is not None:
            if key_source is not None and key_source != config["key_source"]:
                raise StoreError(
                    f"This home already uses the '{config['key_source']}' key source; it is never switched silently.",
                    hint="Use another AUTHSOME_HOME for a different key source.",
                )
            return config
        chosen = key_source or ("keyring" if usable_keyring_backend() is not None else "file")
        passphrase = None
        if chosen == "passphrase":
            import os

            passphrase = os.environ.get("AUTHSOME_PASSPHRASE") or (ask_passphrase(True) if ask_passphrase else None)
        entries, _key = new_key_config(chosen, home.path, passphrase=passphrase)
        config = {"config_version": CONFIG_VERSION, "backend": "local", "created_at": time.time(), **entries}
        home.save_config(config)
    if notice is not None:
        notice(f"Initialised authsome home at {home.path} (key source: {chosen}).")
    return config


def open_local_store(home: Home, config: dict | None, *, ask_passphrase=None) -> SqliteStore:
    """The store of ``home``; ``config`` may be None for a home that has never been written."""

    def key_loader() -> bytes:
        from authsome.vault.keysource import load_key

        current = config if config is not None else home.load_config()
        if current is None:
            raise StoreError(f"The authsome home {home.path} is not initialised.", hint="Run 'authsome init'.")
        return load_key(current, home.path, ask_passphrase=ask_passphrase)

    return SqliteStore(home.db_path, key_loader)


def ask_passphrase_on_terminal(confirm: bool = False) -> str | None:
    """Masked passphrase prompt on the controlling terminal; None when there is no terminal."""
    import getpass

    try:
        with open("/dev/tty", "r+"):
            pass
    except OSError:
        return None
    try:
        first = getpass.getpass("authsome vault passphrase: ")
        if confirm and getpass.getpass("Repeat the passphrase: ") != first:
            print("Error: The passphrases do not match.", file=sys.stderr)
            return None
        return first
    except (EOFError, KeyboardInterrupt):
        return None
