"""Single-flight OAuth refresh across machines: a short lease on the connection, claimed with check-and-set.

Check-and-set on the final token write alone is not enough: the loser would
already have spent the refresh token, and servers with rotation revoke the
whole grant on reuse. So before calling the token endpoint a machine claims
``<prefix>/<provider>/_lease/<connection>`` = {holder, expires_at} with
check-and-set on the lease's KV version: of two machines that read the same
version, exactly one write succeeds. The others wait, then re-read the
connection (the holder has saved new tokens by then). A holder that dies
leaves a lease that simply expires (``expires_at``, wall clock: keep the
machines' clocks in sync to well under ``LEASE_SECONDS``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import time

from authsome.errors import StoreError, StoreLockedError
from authsome.vault.openbao_engine import CasMismatch

LEASE_SECONDS = 30.0
WAIT_SECONDS = 60.0
POLL_SECONDS = 0.1


def refresh_lock(home_path, store, provider: str, connection: str):
    """The lock around one refresh: this machine's file lock, plus the engine lease on a team home."""
    from authsome.vault.locks import connection_lock

    local = connection_lock(home_path, provider, connection)
    if not hasattr(store, "refresh_lease"):
        return local
    stack = contextlib.ExitStack()
    stack.enter_context(local)  # processes of one machine queue locally, not on the engine
    try:
        stack.enter_context(store.refresh_lease(provider, connection))
    except BaseException:
        stack.close()
        raise
    return stack


@contextlib.contextmanager
def engine_lease(
    store, provider: str, connection: str, *, lease_seconds: float = LEASE_SECONDS, wait_seconds: float = WAIT_SECONDS
):
    """Hold the engine lease of one connection for the ``with`` body (bounded wait, then StoreLockedError)."""
    path = store._path(provider, "_lease", connection)
    what = f"claim the refresh lease of {provider} ({connection})"
    holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    deadline = time.monotonic() + wait_seconds
    while True:
        found = store._read(path, what)
        if found is None:  # never claimed, or its latest version deleted ('kv delete')
            version, deleted = store._current_version(path, what)
            claimable = version == 0 or deleted  # otherwise another machine claimed it since our read
        else:
            data, version = found
            claimable = not data.get("holder") or float(data.get("expires_at") or 0) <= time.time()
        if claimable:
            try:
                claim = {"holder": holder, "expires_at": time.time() + lease_seconds}
                version = store._write(path, claim, version, what)
                break
            except CasMismatch:
                pass  # another machine claimed the same version first: it refreshes, we wait
        if time.monotonic() >= deadline:
            raise StoreLockedError(
                f"Timed out after {wait_seconds:.0f} s waiting for another machine refreshing "
                f"{provider} ({connection}).",
                hint=f"Retry; a lease left by a machine that died expires by itself within {lease_seconds:.0f} s.",
            )
        time.sleep(POLL_SECONDS)
    try:
        yield
    finally:
        try:  # release only our own claim: after expiry someone else may hold a newer version
            store._write(
                path, {"holder": None, "released_at": time.time()}, version, f"release the lease of {provider}"
            )
        except (CasMismatch, StoreError):
            pass  # taken over or engine gone: the lease expires by itself
