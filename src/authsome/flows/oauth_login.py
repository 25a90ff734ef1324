"""``login_oauth``: the OAuth side of ``authsome login``: resolve the client, run the flow, shape the record."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

from authsome.flows.oauth_records import base_url_key, record_fields, save_client, stored_client
from authsome.flows.tokens import ClientConfig


def login_oauth(
    client: Any,
    provider: Any,
    *,
    flow: str,
    connection: str,
    scopes: Iterable[str] | None = None,
    base_url: str | None = None,
    client_id: str | None = None,
    source: str = "auto",
    timeout: float = 300,
    announce: Callable[[str], None] | None = None,
    opener: Callable[[str], object] | None = None,
) -> dict:
    """Log in with ``flow`` and return the fields of the connection record to store.

    ``client`` is the Authsome handle (its store keeps client configs). The client id
    comes from ``--client-id``, the provider's client-id variable or the stored client
    config; a client secret (where the provider requires one) from the stored config
    or the sensitive input pipeline (``source``), never from argv.
    """
    from authsome.flows.oauth_flow import run_oauth_flow

    say = announce or _to_stderr
    store = client.store
    oauth = provider.oauth or {}
    base_key = base_url_key(base_url)
    known = None
    if flow == "dcr_pkce" and not client_id:
        known = chosen = stored_client(store, provider.name, base_key)
    else:
        env_var = oauth.get("client_id_env")
        wanted = client_id or (os.environ.get(env_var) if env_var else None)
        known = stored_client(store, provider.name, base_key, wanted)
        chosen = _with_secret(provider, connection, wanted, known, source, timeout, say) if (wanted or known) else None

    result = run_oauth_flow(
        provider,
        flow=flow,
        connection=connection,
        scopes=scopes,
        base_url=base_url,
        client=chosen,
        timeout=timeout,
        announce=say,
        open_browser=_may_open_browser(source),
        opener=opener,
        on_registered=lambda new: save_client(store, provider.name, base_key, new, registered=True),
    )
    if not result.registered and result.client != known:
        save_client(store, provider.name, base_key, result.client, registered=False)
    return record_fields(result.tokens, flow=flow, client_id=result.client.client_id, base_key=base_key)


def _with_secret(provider, connection, wanted, known, source, timeout, say) -> ClientConfig:
    """The client config to use, asking for the secret when the provider requires one."""
    if known is not None and (known.client_secret or not _needs_secret(provider, source)):
        return known
    client_id = wanted or known.client_id
    secret = _ask_client_secret(provider, connection, source, timeout, say) if _needs_secret(provider, source) else None
    return ClientConfig(client_id, secret, known.redirect_uris if known else ())


def _needs_secret(provider, source: str) -> bool:
    oauth = provider.oauth or {}
    if oauth.get("client_secret_required"):
        return True
    # --from-env with the secret variable set: a confidential client the user chose to use
    env_var = oauth.get("client_secret_env")
    return source == "env" and bool(env_var and os.environ.get(env_var))


def _ask_client_secret(provider, connection: str, source: str, timeout: float, say) -> str:
    from authsome.secret_input.pipeline import capture
    from authsome.secret_input.request import FieldSpec, SecretRequest

    oauth = provider.oauth or {}
    hint = f"From the OAuth app's settings{': ' + oauth['app_setup_url'] if oauth.get('app_setup_url') else ''}."
    request = SecretRequest(
        provider=provider.name,
        display_name=f"{provider.display_name} OAuth client",
        connection=connection,
        fields=[FieldSpec("client_secret", "OAuth client secret", secret=True, hint=hint)],
    )
    env_vars = {"client_secret": oauth["client_secret_env"]} if oauth.get("client_secret_env") else {}
    values = capture(request, source=source, env_vars=env_vars, timeout=timeout, announce=say)
    return values["client_secret"]


def _may_open_browser(source: str) -> bool:
    """Open a browser where one can appear (a display, or $BROWSER set), unless --no-browser.

    ``--from-env``/``--stdin`` only say where a client secret comes from: the sign-in
    still happens in the browser. Without one, the URL is printed to open elsewhere.
    """
    if source == "terminal":
        return False
    from authsome.secret_input.pipeline import has_display

    return has_display() or bool(os.environ.get("BROWSER"))


def _to_stderr(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
