"""Metadata views of a connection record: status, times, the ``list``/``get`` shape.

Kept free of heavy imports: the CLI's fast paths use it.
"""

from __future__ import annotations

import time

CONNECTED = "connected"
EXPIRED = "expired"
AVAILABLE = "available"

METADATA_FIELDS = (
    "provider",
    "connection",
    "status",
    "auth_type",
    "flow",
    "is_default",
    "created_at",
    "updated_at",
    "expires_at",
    "scopes",
)


def iso_time(ts: float | None) -> str | None:
    return None if ts is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def connection_status(record) -> str:
    """Status from what is stored; never touches the network."""
    if record.status == EXPIRED:
        return EXPIRED
    if record.auth_type == "oauth2" and record.expires_at is not None and record.expires_at <= time.time():
        if "refresh_token" not in record.sealed:
            return EXPIRED
    return record.status or CONNECTED


def metadata_field(record, name: str, is_default: bool):
    """One metadata field; computing only what is asked keeps `get --field status` from decoding JSON."""
    if name == "status":
        return connection_status(record)
    if name == "is_default":
        return is_default
    if name in ("created_at", "updated_at", "expires_at"):
        return iso_time(getattr(record, name))
    if name == "scopes":
        return list(record.scopes)
    return getattr(record, name)


def metadata(record, is_default: bool, fields=METADATA_FIELDS) -> dict:
    return {name: metadata_field(record, name, is_default) for name in fields}


def field_text(value) -> str:
    """How ``get --field`` prints a metadata value."""
    if isinstance(value, list):
        return " ".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def valid_name(name: str) -> bool:
    """Provider and connection names: ``^[a-z0-9][a-z0-9._-]*$``, no ``..``, at most 64 characters."""
    if not name or len(name) > 64 or ".." in name:
        return False
    if not (name[0].isascii() and (name[0].islower() or name[0].isdigit())):
        return False
    return all(c.isascii() and (c.islower() or c.isdigit() or c in "._-") for c in name)
