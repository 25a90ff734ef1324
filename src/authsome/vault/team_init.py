"""``authsome init --backend openbao``: check the engine credential, then set the home up for it.

Order: the credential is read (environment or the sensitive input pipeline,
never argv) and checked against the engine with a lookup of the token itself
(a restricted token may be unable to list or write the prefix) before
anything is created; then the local key source is made, the credential kept
as an internal record of the local vault, and only then config.json names
the team backend. A failure leaves the home as it was.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from authsome.errors import StoreError, UsageError
from authsome.loopback import is_loopback_host
from authsome.vault.openbao_auth import (
    APPROLE_TOKEN_RECORD,
    SECRET_ID_ENV_VAR,
    SECRET_ID_RECORD,
    TOKEN_ENV_VARS,
    TOKEN_RECORD,
    approle_login,
    lookup_self,
)

AUTH_METHODS = ("token", "approle")


def team_settings(urls, mount: str | None, prefix: str | None, auth: str | None, role_id: str | None) -> dict:
    """Validated ``config["team"]`` from the init / migrate options."""
    urls = [u.strip() for u in urls or () if u.strip()]
    if not urls:
        raise UsageError("The openbao backend needs the engine's address.", hint="Add --url http://HOST:8200.")
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"'{url}' is not an http(s) URL of an engine.", hint="e.g. --url https://bao.example:8200")
        if parts.username or parts.password or parts.query:
            raise UsageError(f"The engine URL '{parts.hostname}' must not carry credentials or a query.")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise UsageError(
                f"'{url}' would send the engine token unencrypted over the network.",
                hint="Use https:// (plain http is accepted for loopback addresses only).",
            )
    auth = auth or "token"
    if auth not in AUTH_METHODS:
        raise UsageError(f"Unknown engine auth method '{auth}'.", hint=f"Use one of: {', '.join(AUTH_METHODS)}.")
    if auth == "approle" and not role_id:
        raise UsageError("--auth approle needs --role-id ID (the role id is not a secret).")
    mount = (mount or "secret").strip("/")
    prefix = (prefix if prefix is not None else "authsome").strip("/")
    if not mount or ".." in mount.split("/") or ".." in prefix.split("/"):
        raise UsageError("--mount and --prefix must be plain KV paths (no '..').")
    team = {"urls": urls, "mount": mount, "prefix": prefix, "auth": auth}
    if auth == "approle":
        team["role_id"] = role_id
    return team


def read_engine_credential(team: dict, *, source: str = "auto", timeout: float = 300, announce=None) -> dict[str, str]:
    """The token (or AppRole secret id) from the environment or the input pipeline: never argv."""
    if team["auth"] == "approle":
        value = os.environ.get(SECRET_ID_ENV_VAR, "").strip()
        field, label = "secret_id", "AppRole secret id"
    else:
        value = next((os.environ[v].strip() for v in TOKEN_ENV_VARS if os.environ.get(v, "").strip()), "")
        field, label = "token", "token"
    if value:
        return {field: value}
    from authsome.secret_input.pipeline import capture
    from authsome.secret_input.request import FieldSpec, SecretRequest

    request = SecretRequest("openbao", "OpenBao / Vault", "team", [FieldSpec(field, label)])
    return capture(request, source=source, env_vars={}, timeout=timeout, announce=announce)


def verify_credential(team: dict, credential: dict[str, str]) -> dict:
    """Log in if needed and look the token up; returns {"token", "policies", "ttl"}. Writes nothing."""
    from authsome.vault.openbao_engine import Engine

    engine = Engine(team["urls"], lambda: "")
    try:
        if team["auth"] == "approle":
            token, _ttl = approle_login(engine, "approle", team["role_id"], credential["secret_id"])
        else:
            token = credential["token"]
        info = lookup_self(engine, token=token)
    finally:
        engine.close()
    return {"token": token, **info}


def initialize_team_home(
    home, team: dict, credential: dict[str, str], *, key_source=None, notice=None, ask_passphrase=None
) -> dict:
    """Create (or re-point) a home at the team engine; ``credential`` already verified."""
    from authsome.vault.local import initialize_home, open_local_store

    config = home.load_config()
    if config is not None and config.get("backend", "local") != "openbao":
        local = open_local_store(home, config, ask_passphrase=ask_passphrase)
        try:
            count = len(local.list_connections())
        finally:
            local.close()
        if count:
            raise StoreError(
                f"This home keeps {count} connection(s) in its local vault; init does not switch it silently.",
                hint="Run 'authsome migrate --to openbao --url URL' to move them to the team vault.",
            )
    config = initialize_home(home, key_source=key_source, notice=notice, ask_passphrase=ask_passphrase)
    local = open_local_store(home, config, ask_passphrase=ask_passphrase)
    try:
        store_credential(local, team, credential)
    finally:
        local.close()
    config = dict(config, backend="openbao", team=team)
    home.save_config(config)
    return config


def store_credential(local, team: dict, credential: dict[str, str]) -> None:
    if team["auth"] == "approle":
        local.put_internal(SECRET_ID_RECORD, {"secret_id": credential["secret_id"]})
        local.delete_internal(APPROLE_TOKEN_RECORD)
    else:
        local.put_internal(TOKEN_RECORD, {"token": credential["token"]})


def switch_to_local(home, config: dict) -> dict:
    """config.json back to the local backend (after ``migrate --to local``)."""
    config = {k: v for k, v in config.items() if k != "team"}
    config["backend"] = "local"
    home.save_config(config)
    return config
