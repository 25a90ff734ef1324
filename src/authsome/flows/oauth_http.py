"""The HTTP side shared by the OAuth flows: an Authlib session, and mapping its failures.

Authlib and httpx are imported here, inside functions, never at module load.
"""

from __future__ import annotations

import re
from typing import Any

from authsome.errors import (
    AuthsomeError,
    CancelledError,
    InvalidCredentialError,
    NotLoggedInError,
    TokenExpiredError,
)
from authsome.flows.tokens import ClientConfig

DEFAULT_HTTP_TIMEOUT = 30.0
USER_AGENT = "authsome"


def oauth_session(
    client: ClientConfig,
    *,
    scopes: tuple[str, ...] = (),
    redirect_uri: str | None = None,
    timeout: float = DEFAULT_HTTP_TIMEOUT,
):
    """An Authlib OAuth2Client (an httpx.Client) for ``client``, PKCE S256 on.

    Confidential clients authenticate with HTTP Basic (RFC 6749 section 2.3.1),
    public clients send only their ``client_id``.
    """
    from authlib.integrations.httpx_client import OAuth2Client

    auth_method = "none" if client.is_public else "client_secret_basic"
    return OAuth2Client(
        client_id=client.client_id,
        client_secret=client.client_secret,
        token_endpoint_auth_method=auth_method,
        revocation_endpoint_auth_method=auth_method,
        scope=" ".join(scopes) or None,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,  # no proxy variables: tokens go straight to the provider
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
    )


def _http_modules() -> tuple:
    """httpx, and httpx2 when installed: Authlib prefers httpx2, whose exceptions are its own."""
    import httpx

    modules = [httpx]
    try:
        import httpx2  # type: ignore[import-not-found]

        modules.append(httpx2)
    except ImportError:
        pass
    return tuple(modules)


def _is(exc: BaseException, name: str) -> bool:
    return any(isinstance(exc, getattr(module, name)) for module in _http_modules())


def oauth_error_code(exc: BaseException) -> str | None:
    """The RFC 6749 ``error`` code of an Authlib OAuthError, else None."""
    from authlib.integrations.base_client.errors import OAuthError

    if isinstance(exc, OAuthError):
        return safe_error_code(exc.error)
    return None


def safe_error_code(value: object) -> str:
    """An ``error`` value from the network, shown only if it looks like one (no escapes, no text)."""
    text = str(value or "")
    return text if re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", text) else "unrecognised_error"


def is_transient(exc: BaseException) -> bool:
    """Network failures, timeouts and 5xx answers: worth retrying, not a refusal."""
    if _is(exc, "TransportError"):
        return True
    if _is(exc, "HTTPStatusError"):
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    return oauth_error_code(exc) in {"temporarily_unavailable", "server_error"}


def describe(exc: BaseException) -> str:
    """A short, secret-free description of a failure (no URLs with query strings, no bodies)."""
    code = oauth_error_code(exc)
    if code:
        return code
    if _is(exc, "HTTPStatusError"):
        return f"HTTP {exc.response.status_code}"
    if _is(exc, "TimeoutException"):
        return "timed out"
    if _is(exc, "TransportError"):
        return "could not connect"
    return type(exc).__name__


def login_error(exc: BaseException, *, label: str, step: str) -> AuthsomeError:
    """Map a failure during login (``step`` e.g. "exchanging the authorization code")."""
    code = oauth_error_code(exc)
    if code == "access_denied":
        return CancelledError(
            f"The sign-in to {label} was denied at the provider.",
            hint="Run the login again and approve the request.",
        )
    if is_transient(exc):
        return NotLoggedInError(
            f"The authorization server of {label} failed while {step} ({describe(exc)}).",
            hint="Check the network and run the login again.",
        )
    if code:
        return InvalidCredentialError(
            f"The authorization server of {label} refused the login while {step} ({code}).",
            hint="Check the client id (and secret) and run the login again.",
        )
    return NotLoggedInError(
        f"Unexpected answer from the authorization server of {label} while {step} ({describe(exc)}).",
        hint="Run the login again; if it keeps failing, check the provider's OAuth endpoints.",
    )


def refresh_error(exc: BaseException, *, label: str, login_command: str) -> TokenExpiredError:
    """Map a failed refresh: refused (log in again) versus transient (retry)."""
    if is_transient(exc):
        return TokenExpiredError(
            f"Could not refresh the access token for {label}: the provider is unreachable "
            f"or failing ({describe(exc)}). The stored tokens are unchanged.",
            hint="Retry in a moment.",
        )
    return TokenExpiredError(
        f"The provider refused to refresh the access token for {label} ({describe(exc)}).",
        hint=f"Log in again: `{login_command}`.",
    )


def json_object(response: Any, *, what: str) -> dict:
    """The JSON object body of ``response``, or ValueError (no body text in the message)."""
    try:
        data = response.json()
    except ValueError:
        raise ValueError(f"{what} is not JSON (HTTP {response.status_code})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{what} is not a JSON object (HTTP {response.status_code})")
    return data
