"""Cross-process locks (fcntl) with a bounded wait.

Used for single-flight OAuth refresh (one lock per connection) and for
first-time home initialisation.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

from authsome.errors import StoreLockedError


@contextlib.contextmanager
def file_lock(path: Path, *, timeout: float = 30.0, what: str = "the vault"):
    """Hold an exclusive lock on ``path`` (created 0600) for the ``with`` body."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreLockedError(
                        f"Timed out after {timeout:.0f} s waiting for another authsome process using {what}.",
                        hint="Retry; if it persists, look for a stuck authsome process.",
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def connection_lock(home_path: Path, provider: str, connection: str, *, timeout: float = 60.0):
    """The per-connection lock that makes token refresh single-flight across processes."""
    locks = Path(home_path) / "locks"
    locks.mkdir(mode=0o700, exist_ok=True)
    # provider and connection names are validated ([a-z0-9._-], no '..'), so they are safe in a file name.
    return file_lock(locks / f"{provider}@{connection}.lock", timeout=timeout, what=f"{provider} ({connection})")
