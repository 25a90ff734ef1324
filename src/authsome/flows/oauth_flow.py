"""``run_oauth_flow``: run one OAuth login flow (pkce, device_code or dcr_pkce) against a provider."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authsome.errors import UsageError
from authsome.flows.browser import Announce
from authsome.flows.endpoints import OAuthEndpoints, resolve_endpoints
from authsome.flows.tokens import ClientConfig, TokenSet

if TYPE_CHECKING:
    from authsome.flows.callback import LoopbackCallback

OAUTH_FLOWS = ("pkce", "device_code", "dcr_pkce")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 section 3.3


@dataclass(frozen=True)
class OAuthLoginResult:
    """The tokens, and the client they were issued to (newly registered when ``registered``)."""

    tokens: TokenSet
    client: ClientConfig
    registered: bool = False


def run_oauth_flow(
    provider: Any,
    *,
    flow: str,
    connection: str,
    scopes: Iterable[str] | None = None,
    base_url: str | None = None,
    client: ClientConfig | None = None,
    timeout: float = 300,
    announce: Announce,
    open_browser: bool = True,
    opener: Callable[[str], object] | None = None,
    on_registered: Callable[[ClientConfig], object] | None = None,
) -> OAuthLoginResult:
    """Log in to ``provider`` with ``flow``.

    ``client`` is the client config the caller resolved (``--client-id``, the provider's
    client-id variable, or the stored one). For ``dcr_pkce`` without one, a client is
    registered and returned in the result so the caller can store it for reuse;
    ``on_registered`` is called as soon as it exists (so it is kept even if the
    user never approves).
    """
    oauth = getattr(provider, "oauth", None) or {}
    label = f"{provider.name} ({connection})"
    scope_list = tuple(scopes) if scopes is not None else tuple(oauth.get("scopes") or ())
    for scope in scope_list:
        if not _SCOPE_TOKEN.fullmatch(scope):
            raise UsageError(
                f"{scope!r} is not a valid OAuth scope for {provider.name}.",
                hint="Scopes are printable ASCII without spaces, '\"' or '\\'; separate several with commas.",
            )
    endpoints = resolve_endpoints(provider, base_url)
    any_port = bool(oauth.get("loopback_any_port"))

    listener = None
    registered = False
    if flow == "dcr_pkce":
        endpoints, client, listener = _dcr_client(
            endpoints, client, scope_list, label=label, announce=announce, on_registered=on_registered
        )
        registered = listener is not None
        any_port = True  # a native client may use any loopback port (RFC 8252 section 7.3)
    else:
        if flow not in OAUTH_FLOWS:
            raise UsageError(
                f"Unknown OAuth flow {flow!r} for {provider.name}.", hint="Use pkce, device_code or dcr_pkce."
            )
        if client is None:
            raise UsageError(
                f"The provider {provider.name} needs an OAuth client id for the {flow} flow.",
                hint=_client_hint(provider, oauth),
            )
        if flow == "device_code":
            from authsome.flows.device_code import login_device_code

            tokens = login_device_code(endpoints, client, scope_list, label=label, timeout=timeout, announce=announce)
            return OAuthLoginResult(tokens, client)

    from authsome.flows.pkce import login_pkce

    tokens = login_pkce(
        endpoints,
        client,
        scope_list,
        label=label,
        timeout=timeout,
        announce=announce,
        any_loopback_port=any_port,
        open_browser=open_browser,
        opener=opener,
        listener=listener,
        authorization_params=oauth.get("authorization_params"),
    )
    return OAuthLoginResult(tokens, client, registered)


def _dcr_client(
    endpoints: OAuthEndpoints,
    client: ClientConfig | None,
    scopes: tuple[str, ...],
    *,
    label: str,
    announce: Announce,
    on_registered: Callable[[ClientConfig], object] | None,
) -> tuple[OAuthEndpoints, ClientConfig, LoopbackCallback | None]:
    """The endpoints (discovered when incomplete) and the client for a ``dcr_pkce`` login.

    Without ``client`` one is registered, and the listener it was registered for is
    returned too (open: the login must use exactly that redirect URI).
    """
    from authsome.flows.callback import LoopbackCallback
    from authsome.flows.dcr import discover, register_client

    if not (endpoints.registration_url and endpoints.authorization_url and endpoints.token_url):
        endpoints = discover(endpoints)
    if client is not None:
        return endpoints, client, None
    # Register exactly the redirect URI this login listens on (a native client: RFC 8252
    # lets later logins use another loopback port if this one is busy then).
    listener = LoopbackCallback(0)
    try:
        client = register_client(endpoints, redirect_uris=[listener.redirect_uri], scopes=scopes)
        if on_registered is not None:
            on_registered(client)
    except BaseException:
        listener.close()
        raise
    announce(f"Registered an OAuth client for {label}.")
    return endpoints, client, listener


def _client_hint(provider: Any, oauth: dict) -> str:
    parts = [f"Pass --client-id ID (`authsome login {provider.name} --client-id ID`)"]
    if oauth.get("client_id_env"):
        parts.append(f"or set {oauth['client_id_env']}")
    hint = " ".join(parts) + "."
    if oauth.get("app_setup_url"):
        hint += f" Create an OAuth app at {oauth['app_setup_url']}."
    return hint
