"""Records handed out by a store. Secrets stay sealed until asked for."""

from __future__ import annotations

from authsome.errors import StoreCorruptError


def _decode_json(text, kind, where: str):
    import json  # lazy: `get --field status` and `list` never need it

    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        value = None
    if not isinstance(value, kind):
        raise StoreCorruptError(
            f"The stored record of {where} is damaged.",
            hint="Restore the vault from a backup or remove that connection; nothing else was changed.",
        )
    return value


class ConnectionRecord:
    """One named credential of a provider.

    ``sealed`` maps field names to whatever the backend keeps (an envelope for
    the local vault); ``secret(name)`` opens one field on demand, so metadata
    reads never touch the key. ``scopes``, ``metadata`` and ``sealed`` may be
    given as JSON text (``from_row``) and are then decoded on first use.
    """

    __slots__ = (
        "provider", "connection", "auth_type", "flow", "status", "created_at", "updated_at",
        "expires_at", "version", "_scopes", "_metadata", "_sealed", "_opener",
    )  # fmt: skip

    def __init__(self, *, provider, connection, auth_type, flow, status, created_at, updated_at,
                 expires_at=None, scopes=(), metadata=None, sealed=None, version=1, opener=None):  # fmt: skip
        self.provider = provider
        self.connection = connection
        self.auth_type = auth_type
        self.flow = flow
        self.status = status
        self.created_at = created_at
        self.updated_at = updated_at
        self.expires_at = expires_at
        self.version = version
        self._scopes = list(scopes or ()) if not isinstance(scopes, str) else scopes
        self._metadata = dict(metadata or {}) if not isinstance(metadata, str) else metadata
        self._sealed = dict(sealed or {}) if not isinstance(sealed, str) else sealed
        self._opener = opener

    def _where(self) -> str:
        return f"{self.provider} ({self.connection})"

    @property
    def scopes(self) -> list:
        if isinstance(self._scopes, str):
            self._scopes = _decode_json(self._scopes, list, self._where())
        return self._scopes

    @property
    def metadata(self) -> dict:
        if isinstance(self._metadata, str):
            self._metadata = _decode_json(self._metadata, dict, self._where())
        return self._metadata

    @property
    def sealed(self) -> dict:
        if isinstance(self._sealed, str):
            self._sealed = _decode_json(self._sealed, dict, self._where())
        return self._sealed

    def secret_fields(self) -> list[str]:
        return sorted(self.sealed)

    def secret(self, field: str) -> str:
        if field not in self.sealed:
            raise KeyError(field)
        return self._opener(self, field, self.sealed[field])

    def secrets(self) -> dict[str, str]:
        return {name: self.secret(name) for name in self.sealed}

    def __repr__(self) -> str:  # never shows sealed material
        return f"ConnectionRecord({self.provider}/{self.connection}, status={self.status}, v{self.version})"


class ClientConfigRecord:
    """An OAuth client (id public, secret sealed) for one provider and base URL."""

    __slots__ = ("provider", "base_url", "client_id", "metadata", "sealed", "version", "_opener")

    def __init__(self, *, provider, base_url, client_id, metadata=None, sealed=None, version=1, opener=None):
        self.provider = provider
        self.base_url = base_url
        self.client_id = client_id
        self.metadata = dict(metadata or {})
        self.sealed = dict(sealed or {})
        self.version = version
        self._opener = opener

    def secret(self, field: str) -> str | None:
        if field not in self.sealed:
            return None
        return self._opener(self, field, self.sealed[field])

    def __repr__(self) -> str:
        return f"ClientConfigRecord({self.provider} @ {self.base_url or 'default'}, v{self.version})"
