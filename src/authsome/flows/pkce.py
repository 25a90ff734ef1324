"""Authorization code flow with PKCE (RFC 7636, S256 only) and a loopback redirect (RFC 8252)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import urlsplit

from authsome.errors import UsageError
from authsome.flows.browser import Announce, show_and_open
from authsome.flows.callback import LoopbackCallback, check_result
from authsome.flows.endpoints import OAuthEndpoints
from authsome.flows.oauth_http import login_error, oauth_session
from authsome.flows.tokens import ClientConfig, TokenSet

DEFAULT_REDIRECT_PORT = 7999
# Provider-specific extras (e.g. Google's access_type=offline) never override these.
_PROTOCOL_PARAMS = frozenset(
    {"client_id", "response_type", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method"}
)


def new_code_verifier() -> str:
    """43-128 characters from the unreserved set (RFC 7636 section 4.1): 64 here."""
    return secrets.token_urlsafe(48)


def pick_port(client: ClientConfig, *, any_loopback_port: bool, default_port: int) -> int:
    """The port to listen on: a registered redirect's port, else 0 (any) or the fixed default."""
    for uri in client.redirect_uris:
        parts = urlsplit(uri)
        if parts.hostname == "127.0.0.1" and parts.port:
            return parts.port
    return 0 if any_loopback_port else default_port


def _listen(client: ClientConfig, *, any_loopback_port: bool, default_port: int) -> LoopbackCallback:
    port = pick_port(client, any_loopback_port=any_loopback_port, default_port=default_port)
    try:
        return LoopbackCallback(port)
    except UsageError:
        # A registered port that is busy: a native client may use any loopback port (RFC 8252 7.3).
        if port and any_loopback_port:
            return LoopbackCallback(0)
        raise


def login_pkce(
    endpoints: OAuthEndpoints,
    client: ClientConfig,
    scopes: Iterable[str],
    *,
    label: str,
    timeout: float,
    announce: Announce,
    any_loopback_port: bool = False,
    redirect_port: int = DEFAULT_REDIRECT_PORT,
    open_browser: bool = True,
    listener: LoopbackCallback | None = None,
    opener: Callable[[str], object] | None = None,
    authorization_params: Mapping[str, str] | None = None,
) -> TokenSet:
    """Run the browser sign-in and exchange the code; ``label`` names provider and connection."""
    from authsome.secret_input.countdown import Countdown

    authorization_url = endpoints.require("authorization_url", "pkce")
    token_url = endpoints.require("token_url", "pkce")
    scope_list = tuple(scopes)
    callback = listener or _listen(client, any_loopback_port=any_loopback_port, default_port=redirect_port)
    with callback:
        verifier = new_code_verifier()
        state = secrets.token_urlsafe(32)
        with oauth_session(client, scopes=scope_list, redirect_uri=callback.redirect_uri) as session:
            extra = {k: v for k, v in (authorization_params or {}).items() if k not in _PROTOCOL_PARAMS}
            url, _ = session.create_authorization_url(authorization_url, state=state, code_verifier=verifier, **extra)
            show_and_open(url, announce=announce, open_browser=open_browser, opener=opener)
            with Countdown(f"Waiting for the browser sign-in to {label}", timeout):
                result = callback.wait(state, timeout)
            code = check_result(result, label=label)
            try:
                data = session.fetch_token(
                    token_url,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=verifier,
                    redirect_uri=callback.redirect_uri,
                )
                return TokenSet.from_response(data, requested_scopes=scope_list)
            except Exception as exc:  # noqa: BLE001 - mapped to a user-facing error below
                raise login_error(exc, label=label, step="exchanging the authorization code") from None
