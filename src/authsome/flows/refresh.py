"""Refreshing access tokens: the protocol step, and single-flight refresh across processes.

A rotating refresh token may be spent once. Several agents reading the same
connection at the same time must therefore not each refresh: the connection's
cross-process lock is taken, the stored tokens re-read under it (another process
may have refreshed meanwhile), refreshed at most once, and the new tokens saved
durably before the access token is handed out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from authsome.errors import TokenExpiredError
from authsome.flows.endpoints import OAuthEndpoints, resolve_endpoints
from authsome.flows.oauth_http import is_transient, oauth_session, refresh_error
from authsome.flows.tokens import ClientConfig, TokenSet

REFRESH_WINDOW_SECONDS = 300  # refresh when the access token expires within 5 minutes


class RefreshRefusedError(TokenExpiredError):
    """The provider refused the refresh token (``invalid_grant`` and the like): log in again."""


class RefreshUnavailableError(TokenExpiredError):
    """The provider could not be reached or failed (network, 5xx): stored tokens are kept."""


def refresh_tokens(
    endpoints: OAuthEndpoints,
    client: ClientConfig,
    tokens: TokenSet,
    *,
    label: str,
    login_command: str,
) -> TokenSet:
    """Spend ``tokens.refresh_token`` once at the token endpoint and return the new set."""
    if not tokens.refresh_token:
        raise RefreshRefusedError(
            f"The access token for {label} has expired and there is no refresh token.",
            hint=f"Log in again: `{login_command}`.",
        )
    token_url = endpoints.require("token_url", "refresh")
    try:
        with oauth_session(client) as session:
            data = session.refresh_token(token_url, refresh_token=tokens.refresh_token)
        return TokenSet.from_response(data, requested_scopes=tokens.scopes, previous_refresh_token=tokens.refresh_token)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one of two user-facing errors
        error = refresh_error(exc, label=label, login_command=login_command)
        cls = RefreshUnavailableError if is_transient(exc) else RefreshRefusedError
        raise cls(error.message, hint=error.hint) from None


def refresh_single_flight(
    *,
    load: Callable[[], TokenSet],
    refresh: Callable[[TokenSet], TokenSet],
    save: Callable[[TokenSet], None],
    mark_expired: Callable[[], None],
    lock: Callable[[], AbstractContextManager],
    window: float = REFRESH_WINDOW_SECONDS,
) -> TokenSet:
    """Tokens valid for more than ``window`` seconds, refreshing them (single flight) if needed.

    ``load`` reads the stored tokens, ``refresh`` spends the refresh token, ``save``
    stores the new tokens durably (one transaction), ``mark_expired`` records a refusal,
    ``lock`` returns the connection's cross-process lock. Refused: ``mark_expired``,
    then RefreshRefusedError; transient: nothing stored, RefreshUnavailableError.
    """
    tokens = load()
    if not tokens.expires_within(window):
        return tokens
    with lock():
        tokens = load()  # someone else may have refreshed while we waited for the lock
        if not tokens.expires_within(window):
            return tokens
        if not tokens.refresh_token and not tokens.expires_within(0):
            return tokens  # nothing to refresh with, but still valid: use it while it lasts
        try:
            fresh = refresh(tokens)
        except RefreshRefusedError:
            mark_expired()
            raise
        save(fresh)
        return fresh


def refresh_if_needed(client: Any, provider: Any, record: Any) -> Any:
    """The library's hook: ``record`` (a ConnectionRecord) with tokens valid for 5 more minutes.

    Metadata only (no key, no network) unless the token is near expiry. A connection
    marked ``expired`` fails at once (exit 6) with the hint to log in again.
    """
    from authsome.connection_info import CONNECTED, EXPIRED
    from authsome.errors import NotLoggedInError
    from authsome.flows.oauth_records import client_for_record, login_command, token_secrets, tokens_from_record

    name, connection = provider.name, record.connection
    label = f"{name} ({connection})"
    command = login_command(name, connection)
    if record.status == EXPIRED:
        raise _expired(label, command)
    if record.expires_at is None or record.expires_at - time.time() > REFRESH_WINDOW_SECONDS:
        return record

    store = client.store
    latest = {"record": record, "saved": False}

    def load() -> TokenSet:
        current = store.get_connection(name, connection)
        if current is None:
            raise NotLoggedInError(f"{label} was logged out meanwhile.", hint=f"Run 'authsome login {name}'.")
        if current.status == EXPIRED:
            raise _expired(label, command)
        latest["record"] = current
        return tokens_from_record(current)

    def refresh(tokens: TokenSet) -> TokenSet:
        current = latest["record"]
        endpoints = resolve_endpoints(provider, current.metadata.get("base_url") or None)
        if not endpoints.token_url:  # a discovery-only provider (dcr_pkce)
            from authsome.flows.dcr import discover

            endpoints = discover(endpoints)
        oauth_client = client_for_record(store, name, current)
        return refresh_tokens(endpoints, oauth_client, tokens, label=label, login_command=command)

    def save(tokens: TokenSet) -> None:
        current = latest["record"]
        store.put_connection(
            provider=name,
            connection=connection,
            auth_type=current.auth_type,
            flow=current.flow,
            status=CONNECTED,
            secrets=token_secrets(tokens),
            expires_at=tokens.expires_at,
            scopes=list(tokens.scopes),
            metadata=dict(current.metadata, token_type=tokens.token_type),
            expected_version=current.version,
            make_default_if_none=False,
        )
        latest["saved"] = True
        client.audit.record("refresh", provider=name, connection=connection, outcome="ok")

    def mark_expired() -> None:
        store.update_status(name, connection, EXPIRED, expected_version=latest["record"].version)
        client.audit.record("refresh", provider=name, connection=connection, outcome="refused")

    refresh_single_flight(
        load=load,
        refresh=refresh,
        save=save,
        mark_expired=mark_expired,
        lock=lambda: _refresh_lock(client, name, connection),
    )
    if latest["saved"]:
        return store.get_connection(name, connection)
    return latest["record"]


def _refresh_lock(client: Any, provider: str, connection: str) -> AbstractContextManager:
    """This machine's per-connection file lock, plus the engine lease when the home is a team vault."""
    try:
        from authsome.vault.openbao_lease import refresh_lock
    except ImportError:  # a build without the team backend
        from authsome.vault.locks import connection_lock

        return connection_lock(client.home.path, provider, connection)
    return refresh_lock(client.home.path, client.store, provider, connection)


def _expired(label: str, command: str) -> TokenExpiredError:
    return TokenExpiredError(
        f"The OAuth tokens of {label} have expired and could not be refreshed.",
        hint=f"Log in again: `{command}`.",
    )
