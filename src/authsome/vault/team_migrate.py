"""Copying every connection between two stores (``authsome migrate``), verified before the source goes.

Copies connections (same fields, status, expiry, scopes, metadata), client
configs and defaults; then re-reads every copy from the target and compares;
only the caller removes the source, after this returned. A connection that
already exists in the target with the same content counts as copied (so an
interrupted migration can simply be run again); with different content it is
a conflict and nothing of the source is removed.
"""

from __future__ import annotations

from authsome.errors import ConflictError, StoreError


def client_configs(store) -> list:
    """Every client config of ``store`` (both backends)."""
    if hasattr(store, "all_client_configs"):  # team backend
        return store.all_client_configs()
    rows = store._read("SELECT provider, base_url FROM client_configs ORDER BY provider, base_url")
    return [store.get_client_config(p, b) for p, b in rows]


def copy_all(source, target) -> dict:
    """Copy everything from ``source`` to ``target`` and verify it; returns counts."""
    records = source.list_connections()
    copied = []
    for record in records:
        existing = target.get_connection(record.provider, record.connection)
        if existing is not None:
            if _same(existing, record):
                copied.append(record)
                continue
            raise ConflictError(
                f"{record.provider} ({record.connection}) already exists in the target with other content; "
                "nothing was removed from the source.",
                hint="Remove it from one side (authsome logout) and run migrate again.",
            )
        target.put_connection(
            provider=record.provider,
            connection=record.connection,
            auth_type=record.auth_type,
            flow=record.flow,
            status=record.status,
            secrets=record.secrets(),
            expires_at=record.expires_at,
            scopes=record.scopes,
            metadata=record.metadata,
            expected_version=0,
            make_default_if_none=False,
        )
        copied.append(record)
    clients = [c for c in client_configs(source) if c is not None]
    for config in clients:
        secrets = {f: config.secret(f) for f in config.sealed}
        target.put_client_config(config.provider, config.base_url, config.client_id, secrets, config.metadata)
    defaults = {p: c for p, c in source.all_defaults().items() if any(r.provider == p for r in records)}
    for provider, connection in defaults.items():
        target.set_default(provider, connection)
    _verify(target, copied, clients, defaults)
    return {"connections": len(copied), "client_configs": len(clients), "defaults": len(defaults)}


def remove_source(source, providers) -> None:
    for provider in sorted(set(providers)):
        source.delete_provider(provider)


def _verify(target, records, clients, defaults) -> None:
    for record in records:
        copy = target.get_connection(record.provider, record.connection)
        if copy is None or not _same(copy, record):
            raise StoreError(
                f"Verification failed: {record.provider} ({record.connection}) does not read back the same "
                "from the target; nothing was removed from the source.",
                hint="Run migrate again; if it persists, check the target's health ('authsome doctor').",
            )
    for config in clients:
        copy = target.get_client_config(config.provider, config.base_url)
        if copy is None or copy.client_id != config.client_id:
            raise StoreError(f"Verification failed for the OAuth client of {config.provider}; nothing was removed.")
    for provider, connection in defaults.items():
        if target.get_default(provider) != connection:
            raise StoreError(f"Verification failed for the default of {provider}; nothing was removed.")


def _same(a, b) -> bool:
    return (
        a.auth_type == b.auth_type
        and a.flow == b.flow
        and a.status == b.status
        and a.expires_at == b.expires_at
        and list(a.scopes) == list(b.scopes)
        and a.metadata == b.metadata
        and a.secrets() == b.secrets()
    )
