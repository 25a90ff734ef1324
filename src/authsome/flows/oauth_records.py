"""Between the OAuth flows and the store: connection records, client configs, hints.

Stored per OAuth connection: secrets ``access_token`` and ``refresh_token`` (sealed),
``expires_at`` and ``scopes`` (metadata columns), and ``metadata`` =
``{"client_id", "base_url", "token_type"}``. Client configs are kept per provider
and base URL (``""`` for the provider's default), the secret sealed.
"""

from __future__ import annotations

from typing import Any

from authsome.flows.endpoints import normalise_base_url
from authsome.flows.tokens import ClientConfig, TokenSet

TOKEN_FIELDS = ("access_token", "refresh_token")


def base_url_key(base_url: str | None) -> str:
    """The client-config key for a base URL: normalised, ``""`` when none was given."""
    return normalise_base_url(base_url) if base_url else ""


def login_command(provider_name: str, connection: str) -> str:
    """What the user runs to replace a connection's tokens (it exists, hence --force)."""
    flag = "" if connection == "default" else f" --connection {connection}"
    return f"authsome login {provider_name}{flag} --force"


def token_secrets(tokens: TokenSet) -> dict[str, str]:
    secrets = {"access_token": tokens.access_token}
    if tokens.refresh_token:
        secrets["refresh_token"] = tokens.refresh_token
    return secrets


def record_fields(tokens: TokenSet, *, flow: str, client_id: str, base_key: str) -> dict[str, Any]:
    """The keyword arguments of ``store.put_connection`` (less provider, connection, version)."""
    from authsome.connection_info import CONNECTED

    return {
        "auth_type": "oauth2",
        "flow": flow,
        "status": CONNECTED,
        "secrets": token_secrets(tokens),
        "expires_at": tokens.expires_at,
        "scopes": list(tokens.scopes),
        "metadata": {"client_id": client_id, "base_url": base_key, "token_type": tokens.token_type},
    }


def tokens_from_record(record: Any) -> TokenSet:
    """The TokenSet of a stored connection (opens its sealed token fields)."""
    refresh = record.secret("refresh_token") if "refresh_token" in record.sealed else None
    return TokenSet(
        access_token=record.secret("access_token"),
        token_type=str(record.metadata.get("token_type") or "Bearer"),
        refresh_token=refresh,
        expires_at=int(record.expires_at) if record.expires_at is not None else None,
        scopes=tuple(record.scopes),
    )


def stored_client(store: Any, provider_name: str, base_key: str, client_id: str | None = None) -> ClientConfig | None:
    """The stored client config, if any (and if ``client_id`` is given, only when it matches)."""
    record = store.get_client_config(provider_name, base_key)
    if record is None or (client_id and record.client_id != client_id):
        return None
    redirect_uris = record.metadata.get("redirect_uris") or ()
    return ClientConfig(record.client_id, record.secret("client_secret"), tuple(redirect_uris))


def save_client(store: Any, provider_name: str, base_key: str, client: ClientConfig, *, registered: bool) -> None:
    secrets = {"client_secret": client.client_secret} if client.client_secret else {}
    metadata = {"redirect_uris": list(client.redirect_uris), "registered": registered}
    store.put_client_config(provider_name, base_key, client.client_id, secrets, metadata)


def client_for_record(store: Any, provider_name: str, record: Any) -> ClientConfig:
    """The client a connection's tokens were issued to (its secret from the client config)."""
    client_id = str(record.metadata.get("client_id") or "")
    base_key = str(record.metadata.get("base_url") or "")
    return stored_client(store, provider_name, base_key, client_id) or ClientConfig(client_id)
