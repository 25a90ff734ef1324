"""Device authorization grant (RFC 8628): show a code, poll until the user approves it elsewhere."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from authsome.errors import CancelledError, InputTimeoutError
from authsome.flows.browser import Announce
from authsome.flows.endpoints import OAuthEndpoints
from authsome.flows.oauth_http import is_transient, json_object, login_error, oauth_error_code, oauth_session
from authsome.flows.tokens import ClientConfig, TokenSet

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_INTERVAL = 5  # seconds, when the server gives none (RFC 8628 section 3.2)
SLOW_DOWN_STEP = 5  # seconds added on slow_down (section 3.5)
MAX_INTERVAL = 60


def login_device_code(
    endpoints: OAuthEndpoints,
    client: ClientConfig,
    scopes: Iterable[str],
    *,
    label: str,
    timeout: float,
    announce: Announce,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> TokenSet:
    """Request a device code, tell the user where to enter it, poll for the tokens."""
    from authsome.secret_input.countdown import Countdown

    device_url = endpoints.require("device_authorization_url", "device_code")
    token_url = endpoints.require("token_url", "device_code")
    scope_list = tuple(scopes)
    with oauth_session(client) as session:
        try:
            form = {"scope": " ".join(scope_list)} if scope_list else {}
            response = session.post(
                device_url,
                data=form,
                auth=session.client_auth(session.token_endpoint_auth_method),
            )
            if response.status_code >= 500:
                response.raise_for_status()
            grant = json_object(response, what="The device authorization response")
            if "error" in grant:
                from authlib.integrations.base_client.errors import OAuthError

                raise OAuthError(error=str(grant["error"]))
            device_code = str(grant["device_code"])
            user_code = _printable(grant["user_code"])
            verification_uri = _printable(grant["verification_uri"])
        except Exception as exc:  # noqa: BLE001
            raise login_error(exc, label=label, step="requesting a device code") from None

        interval = _positive_int(grant.get("interval"), DEFAULT_INTERVAL)
        expires_in = _positive_int(grant.get("expires_in"), int(timeout))
        wait_for = min(float(timeout), float(expires_in))
        complete = grant.get("verification_uri_complete")
        text = f"To sign in to {label}, open {verification_uri} and enter the code: {user_code}"
        if isinstance(complete, str) and complete:
            text += f"\n  (or open {_printable(complete)})"
        announce(text)

        deadline = clock() + wait_for
        with Countdown(f"Waiting for approval of code {user_code}", wait_for):
            while True:
                if clock() + interval > deadline:
                    raise InputTimeoutError(
                        f"Timed out after {wait_for:.0f} s waiting for the device code to be approved for {label}.",
                        hint="Run the login again (use --timeout SECONDS for more time).",
                    )
                sleep(interval)
                try:
                    data = session.fetch_token(token_url, grant_type=DEVICE_GRANT, device_code=device_code)
                    return TokenSet.from_response(data, requested_scopes=scope_list)
                except Exception as exc:  # noqa: BLE001 - sorted out below
                    interval = _next_interval(exc, interval, label=label)


def _next_interval(exc: BaseException, interval: int, *, label: str) -> int:
    """The interval for the next poll, or the error that ends the login."""
    code = oauth_error_code(exc)
    if code == "authorization_pending":
        return interval
    if code == "slow_down":
        return interval + SLOW_DOWN_STEP
    if code == "access_denied":
        raise CancelledError(
            f"The device sign-in to {label} was denied.", hint="Run the login again and approve the code."
        )
    if code == "expired_token":
        raise InputTimeoutError(
            f"The device code for {label} expired before it was approved.", hint="Run the login again."
        )
    if is_transient(exc):
        return min(interval * 2, MAX_INTERVAL)  # back off (section 3.5), keep polling
    raise login_error(exc, label=label, step="polling for the device code approval")


def _positive_int(value: object, default: int) -> int:
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default


def _printable(value: object) -> str:
    """What the server sends for display, without control characters (no terminal escapes)."""
    return "".join(ch for ch in str(value) if ch.isprintable())[:512]
