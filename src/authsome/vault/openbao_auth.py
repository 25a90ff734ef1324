"""Authenticating to the team engine: which token, from where, and AppRole log-in.

Precedence: ``VAULT_TOKEN``, then ``BAO_TOKEN``, then what the home stored
(an internal record of the local vault: encrypted, hidden from ``list``,
``export`` and ``run``). With AppRole the stored record is the secret id
(``VAULT_SECRET_ID`` wins over it); the client token it yields is cached in
the local vault until shortly before it expires. A token is never put in
argv, config.json, a log line or an error message.
"""

from __future__ import annotations

import os
import time

from authsome.errors import StoreError

TOKEN_RECORD = "team:token"
SECRET_ID_RECORD = "team:approle-secret-id"
APPROLE_TOKEN_RECORD = "team:approle-token"
TOKEN_ENV_VARS = ("VAULT_TOKEN", "BAO_TOKEN")
SECRET_ID_ENV_VAR = "VAULT_SECRET_ID"
RENEW_MARGIN_SECONDS = 60


class TokenSource:
    """Finds the engine token for one home; ``source`` says which one is in use (for whoami)."""

    def __init__(self, team: dict, local) -> None:
        self.auth = team.get("auth", "token")
        self.role_id = team.get("role_id")
        self.approle_mount = team.get("approle_mount", "approle")
        self.local = local
        self.source: str | None = None
        self.engine = None  # set by open_team_store: where an AppRole log-in goes

    def __call__(self) -> str:
        for var in TOKEN_ENV_VARS:
            value = os.environ.get(var, "").strip()
            if value:
                self.source = var
                return value
        if self.auth == "approle":
            return self._approle_token()
        stored = self.local.get_internal(TOKEN_RECORD)
        if stored and stored.get("token"):
            self.source = "stored token (local vault)"
            return stored["token"]
        raise StoreError(
            "No token for the team vault: VAULT_TOKEN and BAO_TOKEN are not set and this home stores none.",
            hint="Set VAULT_TOKEN, or run 'authsome init --backend openbao --url URL' again to store a token.",
        )

    def _approle_token(self) -> str:
        cached = self.local.get_internal(APPROLE_TOKEN_RECORD)
        if cached and cached.get("token") and float(cached.get("expires_at") or 0) > time.time() + RENEW_MARGIN_SECONDS:
            self.source = "approle (cached token)"
            return cached["token"]
        secret_id = os.environ.get(SECRET_ID_ENV_VAR, "").strip()
        if not secret_id:
            stored = self.local.get_internal(SECRET_ID_RECORD) or {}
            secret_id = stored.get("secret_id", "")
        if not secret_id:
            raise StoreError(
                "No AppRole secret id for the team vault: VAULT_SECRET_ID is not set and this home stores none.",
                hint="Set VAULT_SECRET_ID, or run 'authsome init --backend openbao --auth approle' again.",
            )
        self.source = "approle"
        return self._engine_login(secret_id)

    def _engine_login(self, secret_id: str) -> str:
        token, ttl = approle_login(self.engine, self.approle_mount, self.role_id, secret_id)
        expires_at = time.time() + ttl if ttl else time.time() + 3600 * 24 * 365
        self.local.put_internal(APPROLE_TOKEN_RECORD, {"token": token, "expires_at": str(expires_at)})
        return token

    def describe(self, engine) -> dict:
        """Token source and policies, from a lookup of the token itself (never the token)."""
        engine.token()  # resolves the source
        info = {"auth": self.auth, "token_source": self.source}
        if self.role_id:
            info["role_id"] = self.role_id
        try:
            looked_up = lookup_self(engine)
        except StoreError as exc:
            info["policies"] = f"unknown ({exc.message})"
            return info
        info["policies"] = looked_up.get("policies") or []
        ttl = looked_up.get("ttl")
        if ttl:
            info["token_ttl_seconds"] = ttl
        return info


def lookup_self(engine, token: str | None = None) -> dict:
    """The token's own description (policies, ttl): the one call a restricted token may always make."""
    answer = engine.request("GET", "auth/token/lookup-self", what="look up its own token", token=token)
    data = (answer or {}).get("data") or {}
    return {"policies": data.get("policies") or [], "ttl": data.get("ttl"), "display_name": data.get("display_name")}


def approle_login(engine, mount: str, role_id: str | None, secret_id: str) -> tuple[str, int]:
    """Log in with AppRole; returns (client token, ttl seconds)."""
    if not role_id:
        raise StoreError(
            "This home uses AppRole but has no role id.", hint="Run 'authsome init --auth approle --role-id ID'."
        )
    answer = engine.request(
        "POST",
        f"auth/{mount}/login",
        what="log in with AppRole",
        json={"role_id": role_id, "secret_id": secret_id},
        token="",
    )
    auth = (answer or {}).get("auth") or {}
    if not auth.get("client_token"):
        raise StoreError("The team vault's AppRole login returned no token.")
    return auth["client_token"], int(auth.get("lease_duration") or 0)
