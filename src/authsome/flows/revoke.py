"""Token revocation (RFC 7009): the refresh token first (it mints access tokens), then the access token."""

from __future__ import annotations

from typing import Any

from authsome.errors import AuthsomeError
from authsome.flows.endpoints import OAuthEndpoints
from authsome.flows.oauth_http import describe, oauth_session
from authsome.flows.tokens import ClientConfig, TokenSet


class RevocationFailedError(AuthsomeError):
    """The provider did not confirm the revocation; local state must be kept."""

    exit_code = 6
    type = "revocation_failed"


def revoke_tokens(
    endpoints: OAuthEndpoints,
    client: ClientConfig,
    tokens: TokenSet,
    *,
    label: str,
) -> list[str]:
    """Revoke what ``tokens`` holds at the provider; returns the token types revoked.

    A provider without a revocation endpoint revokes nothing (an empty list): the
    caller then only deletes local state. HTTP 200 means revoked (RFC 7009 section
    2.2: also for tokens the server no longer knows); anything else raises
    RevocationFailedError, and the caller keeps its local state.
    """
    url = endpoints.revocation_url
    if not url:
        return []
    revoked: list[str] = []
    pairs = (("refresh_token", tokens.refresh_token), ("access_token", tokens.access_token))
    with oauth_session(client) as session:
        for hint, token in pairs:
            if not token:
                continue
            try:
                response = session.revoke_token(url, token=token, token_type_hint=hint)
            except Exception as exc:  # noqa: BLE001 - network failure: report, keep local state
                raise _failed(label, hint, describe(exc)) from None
            if response.status_code != 200:
                raise _failed(label, hint, f"HTTP {response.status_code}")
            revoked.append(hint)
    return revoked


def _failed(label: str, hint: str, reason: str) -> RevocationFailedError:
    kind = hint.replace("_", " ")
    return RevocationFailedError(
        f"The provider did not revoke the {kind} of {label} ({reason}); nothing was deleted locally.",
        hint="Retry later, or use `logout` to delete only the local copy.",
    )


def revoke_record(client: Any, provider: Any, record: Any) -> list[str]:
    """The library's hook for ``authsome revoke``: revoke one stored OAuth connection at the provider.

    Raises RevocationFailedError when the provider does not confirm; the caller then keeps
    the local state. Returns the token types revoked (empty without a revocation endpoint).
    """
    from authsome.flows.endpoints import resolve_endpoints
    from authsome.flows.oauth_records import client_for_record, tokens_from_record

    label = f"{provider.name} ({record.connection})"
    endpoints = resolve_endpoints(provider, record.metadata.get("base_url") or None)
    if not endpoints.revocation_url and (endpoints.discovery_url or not endpoints.token_url):
        from authsome.flows.dcr import discover

        try:
            endpoints = discover(endpoints)
        except AuthsomeError as exc:
            raise RevocationFailedError(
                f"Could not find the revocation endpoint of {label}: {exc.message}",
                hint="Retry later, or use `logout` to delete only the local copy.",
            ) from None
    tokens = tokens_from_record(record)
    oauth_client = client_for_record(client.store, provider.name, record)
    return revoke_tokens(endpoints, oauth_client, tokens, label=label)
