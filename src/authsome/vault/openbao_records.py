"""How the team backend lays connection records out as KV data, and reads them back.

A connection's KV data: ``{"authsome": 1, "kind": "connection", auth_type, flow,
status, created_at, updated_at, expires_at, scopes, metadata, secrets, write_id}``.
The non-secret part is also published as the secret's KV ``custom_metadata``
(strings only), so a policy may allow reading status, expiry and scopes
(``<mount>/metadata/...``) without the secret fields (``<mount>/data/...``).
"""

from __future__ import annotations

import base64
import json

from authsome.errors import ConflictError, StoreCorruptError
from authsome.vault.records import ConnectionRecord

RECORD_SCHEMA = 1
PUBLIC_FIELDS = ("auth_type", "flow", "status", "created_at", "updated_at", "expires_at", "scopes")


def custom_metadata(data: dict) -> dict[str, str]:
    """The record's non-secret fields as KV custom metadata (string values)."""
    return {
        name: json.dumps(data.get(name)) if not isinstance(data.get(name), str) else data[name]
        for name in PUBLIC_FIELDS
    }


def connection_record(provider: str, connection: str, data: dict, version: int) -> ConnectionRecord:
    where = f"{provider} ({connection}) in the team vault"
    if data.get("kind") != "connection":
        raise StoreCorruptError(
            f"The stored record of {where} is not an authsome connection.",
            hint="Restore it from the engine's version history ('bao kv rollback') or remove it.",
        )
    return ConnectionRecord(
        provider=provider,
        connection=connection,
        auth_type=field(data, "auth_type", str, where),
        flow=field(data, "flow", str, where),
        status=field(data, "status", str, where),
        created_at=field(data, "created_at", (int, float), where),
        updated_at=field(data, "updated_at", (int, float), where),
        expires_at=data.get("expires_at"),
        scopes=field(data, "scopes", list, where),
        metadata=field(data, "metadata", dict, where),
        sealed=field(data, "secrets", dict, where),
        version=version,
        opener=plain,
    )


def plain(record, field: str, stored) -> str:
    return stored


def field(data: dict, name: str, kind, where: str):
    value = data.get(name)
    if not isinstance(value, kind):
        raise StoreCorruptError(
            f"The stored record of {where} is damaged (field '{name}').",
            hint="Restore it from the engine's version history ('bao kv rollback') or remove it.",
        )
    return value


def client_key(base_url: str) -> str:
    if not base_url:
        return "default"
    return "u" + base64.urlsafe_b64encode(base_url.encode()).decode().rstrip("=")


def conflict(provider: str, connection: str, expected: int | None, found: int) -> ConflictError:
    if expected == 0:
        what = f"{provider} ({connection}) was created by another machine meanwhile (now version {found})"
    elif found == 0:
        what = f"{provider} ({connection}) was removed meanwhile (expected version {expected})"
    else:
        what = f"{provider} ({connection}) changed meanwhile (expected version {expected}, found version {found})"
    return ConflictError(
        f"Write conflict in the team vault: {what}; nothing was written.",
        hint=f"Re-read it ('authsome get {provider} --connection {connection}') and retry if you still want "
        "to change it.",
    )
