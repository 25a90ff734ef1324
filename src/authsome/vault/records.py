"""Records handed out by a store. Secrets stay sealed until asked for."""

from __future__ import annotations


class ConnectionRecord:
    """One named credential of a provider.

    ``sealed`` maps field names to whatever the backend keeps (an envelope for
    the local vault); ``secret(name)`` opens one field on demand, so metadata
    reads never touch the key.
    """

    __slots__ = (
        "provider",
        "connection",
        "auth_type",
        "flow",
        "status",
        "created_at",
        "updated_at",
        "expires_at",
        "scopes",
        "metadata",
        "sealed",
        "version",
        "_opener",
    )

    def __init__(
        self,
        *,
        provider,
        connection,
        auth_type,
        flow,
        status,
        created_at,
        updated_at,
        expires_at=None,
        scopes=(),
        metadata=None,
        sealed=None,
        version=1,
        opener=None,
    ):
        self.provider = provider
        self.connection = connection
        self.auth_type = auth_type
        self.flow = flow
        self.status = status
        self.created_at = created_at
        self.updated_at = updated_at
        self.expires_at = expires_at
        self.scopes = list(scopes or ())
        self.metadata = dict(metadata or {})
        self.sealed = dict(sealed or {})
        self.version = version
        self._opener = opener

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
