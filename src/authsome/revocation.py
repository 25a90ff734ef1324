"""``authsome revoke``: end credentials at the provider (OAuth, RFC 7009), then locally."""

from __future__ import annotations

from authsome.errors import NotLoggedInError


def revoke(client, provider_name: str, connection: str | None = None) -> dict:
    """Revoke one connection (``connection`` given) or every connection of the provider.

    OAuth tokens are revoked at the provider first; if that fails, local state
    is kept and the error propagates. API keys have no revocation endpoint, so
    for them this is the same as ``remove`` (or ``logout`` of the named connection).
    """
    provider = client.provider(provider_name)
    if connection is not None:
        records = [client.resolve(provider.name, connection)[1]]
    else:
        records = client.store.list_connections(provider.name)
        if not records:
            raise NotLoggedInError(f"Nothing to revoke: {provider.name} has no local state.")
    client.store.unlock()  # a wrong passphrase stops here, before anything is revoked or deleted
    revoked_remotely = []
    try:
        for record in records:
            if record.auth_type == "oauth2":
                from authsome.flows.revoke import revoke_record

                revoke_record(client, provider, record)
                revoked_remotely.append(record.connection)
    except Exception:
        # What the provider already revoked is dead: drop it locally; keep the rest for a retry.
        for name in revoked_remotely:
            client.store.delete_connection(provider.name, name)
        client.audit.record("revoke", provider=provider.name, connection=connection, outcome="failed")
        raise
    if connection is not None:
        client.store.delete_connection(provider.name, connection)
    else:
        client.store.delete_provider(provider.name)
    names = [r.connection for r in records]
    client.audit.record(
        "revoke",
        provider=provider.name,
        connection=connection,
        outcome="ok",
        detail=f"revoked at provider: {len(revoked_remotely)}, removed locally: {len(names)}",
    )
    return {"provider": provider.name, "connections": names, "revoked_at_provider": revoked_remotely}
