"""The token set an OAuth flow produces, and the client config it used."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


def _split_scopes(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part for part in value.split() if part)
    return tuple(str(part) for part in value)


@dataclass(frozen=True)
class TokenSet:
    """Tokens from a token endpoint. ``repr`` and ``str`` never show a token."""

    access_token: str = field(repr=False)
    token_type: str = "Bearer"
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: int | None = None  # epoch seconds; None when the server gave no lifetime
    scopes: tuple[str, ...] = ()
    id_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_response(
        cls,
        data: Mapping[str, Any],
        *,
        requested_scopes: Iterable[str] = (),
        previous_refresh_token: str | None = None,
        now: float | None = None,
    ) -> TokenSet:
        """Build from a token endpoint's JSON answer (RFC 6749 section 5.1).

        A refresh answer without a new refresh token keeps the previous one
        (servers that do not rotate); an answer without ``scope`` means the
        requested scopes were granted (section 3.3).
        """
        access_token = data.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise ValueError("the token response has no access_token")
        issued_at = time.time() if now is None else now
        expires_in = data.get("expires_in")
        expires_at = None
        if expires_in is not None:
            try:
                expires_at = int(issued_at + float(expires_in))
            except (TypeError, ValueError):
                raise ValueError("the token response has an invalid expires_in") from None
        granted = _split_scopes(data.get("scope")) or tuple(requested_scopes)
        return cls(
            access_token=access_token,
            token_type=str(data.get("token_type") or "Bearer"),
            refresh_token=data.get("refresh_token") or previous_refresh_token,
            expires_at=expires_at,
            scopes=granted,
            id_token=data.get("id_token"),
        )

    def expires_within(self, seconds: float, now: float | None = None) -> bool:
        """True when the access token expires within ``seconds`` (never, without a lifetime)."""
        if self.expires_at is None:
            return False
        current = time.time() if now is None else now
        return self.expires_at - current <= seconds

    def __str__(self) -> str:
        return repr(self)


@dataclass(frozen=True)
class ClientConfig:
    """An OAuth client: its id (public) and its secret (a secret, or None for a public client).

    ``redirect_uris`` records what a dynamically registered client was registered with,
    so a later login uses a redirect the server accepts.
    """

    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    redirect_uris: tuple[str, ...] = ()

    @property
    def is_public(self) -> bool:
        return not self.client_secret

    def __str__(self) -> str:
        return repr(self)
