"""The ``oauth`` section: endpoints, scopes, client settings, schema-1 ``client``."""

from __future__ import annotations

from authsome.providers.model import OAUTH_FLOWS, has_control_characters

# The endpoints a login flow may call (authsome.flows.endpoints resolves exactly these).
OAUTH_ENDPOINT_KEYS = (
    "authorization_url",
    "token_url",
    "device_authorization_url",
    "registration_url",
    "revocation_url",
    "discovery_url",
)
_OAUTH_URLS = (
    *OAUTH_ENDPOINT_KEYS,
    "userinfo_url",
    "app_setup_url",
    "base_url_default",
)
_OAUTH_ENV_VARS = ("client_id_env", "client_secret_env", "env_var")


def parse_oauth_section(data: dict, flows: list[str], version: int, check) -> dict | None:
    """Validate the ``oauth`` section; return a normalized copy (None when absent)."""
    oauth = _validate(data.get("oauth"), flows, version, check)
    if oauth is not None and version == 1:
        for key, value in _schema1_client(data.get("client"), check).items():
            oauth.setdefault(key, value)
    return oauth


def _validate(oauth: object, flows: list[str], version: int, check) -> dict | None:
    wants_oauth = any(f in OAUTH_FLOWS for f in flows)
    if oauth is None:
        if wants_oauth:
            raise check.fail("oauth", "is required for the OAuth flows this provider offers.")
        return None
    if not isinstance(oauth, dict):
        raise check.fail("oauth", "must be an object.")
    if not wants_oauth and version != 1:
        raise check.fail("flows", "'oauth' is given, so 'flow' or 'flows' must name an OAuth flow.")
    out = dict(oauth)
    base_default = check.url(oauth.get("base_url_default"), "oauth.base_url_default", template_ok=False)
    for key in _OAUTH_URLS:
        check.url(oauth.get(key), f"oauth.{key}", template_ok=True)
        value = oauth.get(key)
        if isinstance(value, str) and value.startswith("{base_url}") and base_default is None and version != 1:
            raise check.fail(f"oauth.{key}", "uses {base_url} but oauth.base_url_default is not set.")
    for key in _OAUTH_ENV_VARS:
        check.env_var(oauth.get(key), f"oauth.{key}")
    if version != 1 and oauth.get("client_secret") is not None:
        raise check.fail("oauth.client_secret", "a provider file must not hold a client secret.")
    out.pop("client_secret", None)  # an old file's literal secret stays in raw, never used or shown
    scopes = oauth.get("scopes", [])
    if not isinstance(scopes, list) or not all(
        isinstance(s, str) and s and not any(c.isspace() for c in s) for s in scopes
    ):
        raise check.fail("oauth.scopes", "must be a list of scope strings without spaces.")
    out["scopes"] = list(scopes)
    out["pkce"] = check.boolean(oauth.get("pkce"), "oauth.pkce", True)
    check.boolean(oauth.get("client_secret_required"), "oauth.client_secret_required", False)
    params = oauth.get("authorization_params")
    if params is not None and not (
        isinstance(params, dict)
        and all(
            isinstance(k, str) and isinstance(v, str) and not has_control_characters(k + v) for k, v in params.items()
        )
    ):
        raise check.fail("oauth.authorization_params", "must be an object of string -> string.")
    if oauth.get("header_name") is not None:
        check.header(oauth["header_name"], "oauth.header_name")
    check.prefix(oauth.get("header_prefix"), "oauth.header_prefix")
    needs = {
        "pkce": ("authorization_url", "token_url"),
        "device_code": ("device_authorization_url", "token_url"),
    }
    for flow in flows:
        for key in needs.get(flow, ()):
            if not oauth.get(key):
                raise check.fail(f"oauth.{key}", f"is required for the {flow} flow.")
    if "dcr_pkce" in flows and not (oauth.get("registration_url") or oauth.get("discovery_url")):
        raise check.fail("oauth.registration_url", "is required (or oauth.discovery_url) for dcr_pkce.")
    return out


def _schema1_client(client: object, check) -> dict:
    """The older top-level ``client`` section: ``{"client_id": "env:X_CLIENT_ID"}``.

    Only ``env:`` references and a public client id are taken over; a literal
    client secret in an old file stays in ``raw`` and is never used.
    """
    if not isinstance(client, dict):
        return {}
    out: dict = {}
    client_id = client.get("client_id")
    if isinstance(client_id, str) and client_id.startswith("env:"):
        out["client_id_env"] = check.env_var(client_id[4:], "client.client_id")
    elif isinstance(client_id, str) and client_id:
        out["client_id"] = check.text(client_id, "client.client_id")
    secret = client.get("client_secret")
    if isinstance(secret, str) and secret.startswith("env:"):
        out["client_secret_env"] = check.env_var(secret[4:], "client.client_secret")
    return out
