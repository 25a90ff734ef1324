"""Discovery (RFC 8414 / OpenID Connect Discovery) and dynamic client registration (RFC 7591)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from urllib.parse import urlsplit

from authsome.errors import InvalidCredentialError, NotLoggedInError, ProviderDefinitionError
from authsome.flows.endpoints import OAuthEndpoints, check_endpoint_url
from authsome.flows.oauth_http import DEFAULT_HTTP_TIMEOUT, USER_AGENT, describe, json_object
from authsome.flows.tokens import ClientConfig

CLIENT_NAME = "authsome"

_METADATA_TO_FIELD = {
    "authorization_endpoint": "authorization_url",
    "token_endpoint": "token_url",
    "device_authorization_endpoint": "device_authorization_url",
    "registration_endpoint": "registration_url",
    "revocation_endpoint": "revocation_url",
}


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def discovery_candidates(endpoints: OAuthEndpoints) -> list[str]:
    """Metadata URLs to try: the explicit discovery URL, else the well-known ones of the issuer."""
    if endpoints.discovery_url:
        return [endpoints.discovery_url]
    urls: list[str] = []
    bases = [endpoints.issuer, _origin(endpoints.authorization_url), _origin(endpoints.registration_url)]
    for base in filter(None, bases):
        parts = urlsplit(base)
        root = f"{parts.scheme}://{parts.netloc}"
        path = parts.path.rstrip("/")
        # RFC 8414 section 3.1 inserts the well-known segment before the issuer's path;
        # OpenID Connect Discovery appends it.
        for url in (
            f"{root}/.well-known/oauth-authorization-server{path}",
            f"{root}{path}/.well-known/openid-configuration",
        ):
            if url not in urls:
                urls.append(url)
    return urls


def discover(endpoints: OAuthEndpoints, *, timeout: float = DEFAULT_HTTP_TIMEOUT) -> OAuthEndpoints:
    """Fill the endpoints the provider definition leaves out from the server's metadata."""
    import httpx

    label = endpoints.provider
    with httpx.Client(timeout=timeout, trust_env=False, headers={"User-Agent": USER_AGENT}) as http:
        for url in discovery_candidates(endpoints):
            try:
                response = http.get(url, headers={"Accept": "application/json"})
            except httpx.HTTPError:
                continue
            if response.status_code != 200:
                continue
            try:
                metadata = json_object(response, what="The discovery document")
            except ValueError:
                continue
            found: dict[str, str] = {}
            for key, field in _METADATA_TO_FIELD.items():
                value = metadata.get(key)
                if isinstance(value, str) and value and not getattr(endpoints, field):
                    found[field] = check_endpoint_url(value, what=f"{key} in the metadata of {label}")
            return replace(endpoints, **found)
    raise NotLoggedInError(
        f"Could not read the OAuth server metadata of {label} (tried {len(discovery_candidates(endpoints))} "
        "well-known URLs).",
        hint="Check --base-url, or set oauth.registration_url and the other endpoints in the provider file.",
    )


def register_client(
    endpoints: OAuthEndpoints,
    *,
    redirect_uris: Iterable[str],
    scopes: Iterable[str] = (),
    timeout: float = DEFAULT_HTTP_TIMEOUT,
) -> ClientConfig:
    """Register a public native client (PKCE, no secret) for exactly ``redirect_uris``."""
    import httpx

    label = endpoints.provider
    if not endpoints.registration_url:
        raise ProviderDefinitionError(
            f"The provider {label} offers no dynamic client registration endpoint.",
            hint="Use --flow pkce with --client-id, or add oauth.registration_url to the provider file.",
        )
    uris = list(redirect_uris)
    request = {
        "client_name": CLIENT_NAME,
        "application_type": "native",
        "redirect_uris": uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }
    scope_list = list(scopes)
    if scope_list:
        request["scope"] = " ".join(scope_list)
    try:
        with httpx.Client(timeout=timeout, trust_env=False, headers={"User-Agent": USER_AGENT}) as http:
            response = http.post(endpoints.registration_url, json=request)
    except httpx.HTTPError as exc:
        raise NotLoggedInError(
            f"Could not register an OAuth client with {label} ({describe(exc)}).",
            hint="Check the network and run the login again.",
        ) from None
    if response.status_code not in (200, 201):
        code = _error_code(response)
        raise InvalidCredentialError(
            f"The provider {label} refused to register an OAuth client (HTTP {response.status_code}"
            + (f", {code}" if code else "")
            + ").",
            hint="The provider may not allow open registration; create an OAuth app and use --client-id.",
        )
    try:
        data = json_object(response, what="The registration response")
        client_id = data["client_id"]
    except (ValueError, KeyError):
        raise InvalidCredentialError(f"The provider {label} sent an invalid registration response.") from None
    registered = data.get("redirect_uris")
    return ClientConfig(
        client_id=str(client_id),
        client_secret=data.get("client_secret") or None,
        redirect_uris=tuple(registered) if isinstance(registered, list) else tuple(uris),
    )


def _error_code(response) -> str | None:
    try:
        code = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, str) and code.replace("_", "").isalnum() and len(code) < 64 else None
