"""``authsome login``: pick the flow, capture the credential, store it in one transaction."""

from __future__ import annotations

from authsome.errors import AuthsomeError, ConflictError, UsageError
from authsome.vault.store import CONNECTED

FLOWS = ("api_key", "pkce", "device_code", "dcr_pkce")


def login(
    client,
    provider_name: str,
    connection: str | None = None,
    *,
    force: bool = False,
    source: str = "auto",
    timeout: float = 300,
    flow: str | None = None,
    scopes=None,
    base_url: str | None = None,
    client_id: str | None = None,
    announce=None,
) -> dict:
    """Log in to a provider. Without ``force`` an existing connection is left unchanged.

    Returns ``{"provider", "connection", "changed", "flow"}``.
    """
    from authsome.client import check_connection_name

    provider = client.provider(provider_name)
    chosen_flow = flow or provider.flow
    if chosen_flow not in FLOWS:
        raise UsageError(f"Unknown flow '{chosen_flow}'.", hint=f"Use one of: {', '.join(FLOWS)}.")
    if chosen_flow not in provider.flows:
        raise UsageError(
            f"{provider.name} does not offer the '{chosen_flow}' flow.",
            hint=f"{provider.name} offers: {', '.join(provider.flows)}.",
        )
    client.ensure_initialized()
    store = client.store
    if connection is None:
        connection = store.get_default(provider.name) or "default"
    check_connection_name(connection)

    existing = store.get_connection(provider.name, connection)
    if existing is not None and not force:
        return {
            "provider": provider.name,
            "connection": connection,
            "changed": False,
            "flow": existing.flow,
            "message": f"{provider.name} ({connection}) is already logged in; nothing changed.",
            "hint": f"Run 'authsome login {provider.name}{_conn_flag(connection)} --force' to replace it.",
        }

    if chosen_flow == "api_key":
        try:
            fields = _capture_api_key(provider, connection, source, timeout, announce)
        except AuthsomeError as err:
            client.audit.record("login", provider=provider.name, connection=connection, outcome=err.type)
            raise
        record = {
            "auth_type": "api_key",
            "flow": "api_key",
            "status": CONNECTED,
            "secrets": fields,
            "expires_at": None,
            "scopes": [],
            "metadata": {},
        }
    else:
        from authsome.flows.oauth_login import login_oauth

        record = login_oauth(
            client,
            provider,
            flow=chosen_flow,
            connection=connection,
            scopes=scopes,
            base_url=base_url,
            client_id=client_id,
            source=source,
            timeout=timeout,
            announce=announce,
        )
    try:
        store.put_connection(
            provider=provider.name,
            connection=connection,
            expected_version=existing.version if existing else 0,
            **record,
        )
    except ConflictError:
        client.audit.record("login", provider=provider.name, connection=connection, outcome="conflict")
        raise
    client.audit.record(
        "login",
        provider=provider.name,
        connection=connection,
        flow=chosen_flow,
        outcome="rotated" if existing else "ok",
        source=source,
    )
    return {
        "provider": provider.name,
        "connection": connection,
        "changed": True,
        "flow": chosen_flow,
        "rotated": existing is not None,
    }


def _capture_api_key(provider, connection: str, source: str, timeout: float, announce) -> dict[str, str]:
    from authsome.flows.api_key import api_key_request, env_vars_for
    from authsome.secret_input.pipeline import capture

    if provider.api_key is None and not provider.raw.get("fields"):
        raise UsageError(f"{provider.name} has no API-key definition.", hint="Use an OAuth flow (--flow).")
    request = api_key_request(provider, connection)
    return capture(request, source=source, env_vars=env_vars_for(provider), timeout=timeout, announce=announce)


def _conn_flag(connection: str) -> str:
    return "" if connection == "default" else f" --connection {connection}"
