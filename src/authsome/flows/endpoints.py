"""An OAuth provider's endpoints: from its definition, ``{base_url}`` filled in, checked for safety."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from authsome.errors import ProviderDefinitionError, UsageError
from authsome.loopback import is_loopback_host
from authsome.providers.oauth_spec import OAUTH_ENDPOINT_KEYS


@dataclass(frozen=True)
class OAuthEndpoints:
    """Where a provider's OAuth endpoints are. Any of them may be missing (None)."""

    provider: str
    authorization_url: str | None = None
    token_url: str | None = None
    device_authorization_url: str | None = None
    registration_url: str | None = None
    revocation_url: str | None = None
    discovery_url: str | None = None
    issuer: str | None = None  # the base for well-known discovery

    def require(self, name: str, flow: str) -> str:
        """The endpoint ``name`` (e.g. ``token_url``), or a clear error naming the flow."""
        value = getattr(self, name)
        if not value:
            raise ProviderDefinitionError(
                f"The provider {self.provider} has no oauth.{name}, which the {flow} flow needs.",
                hint="Choose another --flow, or add the endpoint to the provider definition.",
            )
        return value


def check_endpoint_url(url: str, *, what: str) -> str:
    """Accept ``https:`` URLs, and ``http:`` only to a loopback address (local servers, tests).

    Tokens, codes and client secrets travel to these URLs, so nothing else is allowed.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        raise UsageError(f"The {what} is not a valid URL.") from None
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return url
    raise UsageError(
        f"The {what} must be an https:// URL (got a {parts.scheme or 'scheme-less'} URL).",
        hint="Plain http is only accepted for loopback addresses such as 127.0.0.1.",
    )


def normalise_base_url(base_url: str) -> str:
    url = base_url.strip().rstrip("/")
    check_endpoint_url(url, what="--base-url")
    parts = urlsplit(url)
    if parts.query or parts.fragment or parts.username or parts.password:
        raise UsageError("--base-url must be a plain URL without credentials, query or fragment.")
    return url


def resolve_endpoints(provider: Any, base_url: str | None = None) -> OAuthEndpoints:
    """The endpoints of ``provider`` (a parsed Provider), with ``{base_url}`` filled in.

    ``base_url`` comes from ``--base-url``; otherwise the provider's ``base_url_default``.
    """
    oauth = getattr(provider, "oauth", None) or {}
    name = provider.name
    default_base = oauth.get("base_url_default") or getattr(provider, "base_url_default", None)
    chosen_base = base_url or default_base
    values: dict[str, str | None] = {}
    for key in OAUTH_ENDPOINT_KEYS:
        raw = oauth.get(key)
        if raw is None or raw == "":
            values[key] = None
            continue
        if "{base_url}" in raw:
            if not chosen_base:
                raise UsageError(
                    f"The provider {name} needs a base URL for oauth.{key}.",
                    hint=f"Pass --base-url, e.g. `authsome login {name} --base-url https://host.example`.",
                )
            raw = raw.replace("{base_url}", normalise_base_url(chosen_base))
        values[key] = check_endpoint_url(raw, what=f"oauth.{key} of {name}")
    issuer = normalise_base_url(chosen_base) if chosen_base else None
    return OAuthEndpoints(provider=name, issuer=issuer, **values)
