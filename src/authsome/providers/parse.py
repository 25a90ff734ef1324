"""parse_provider: validate a provider definition (current or schema 1) into a Provider.

Every refusal is a ProviderDefinitionError naming the file and the exact
field, e.g. ``field 'hosts[1]'``. See docs/provider-format.md.
"""

from __future__ import annotations

from authsome.errors import ProviderDefinitionError
from authsome.providers.model import OAUTH_FLOWS, CredentialField, Provider, has_control_characters

FLOWS = ("api_key", *OAUTH_FLOWS)
AUTH_TYPES = ("api_key", "oauth2")
MAX_NAME_LENGTH = 64
_NAME_FIRST = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_NAME_CHARS = _NAME_FIRST | frozenset("._-")
_FIELD_FIRST = frozenset("abcdefghijklmnopqrstuvwxyz")
_FIELD_CHARS = _FIELD_FIRST | frozenset("0123456789_")
_ENV_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_ENV_CHARS = _ENV_FIRST | frozenset("0123456789")
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_OAUTH_URLS = (
    "authorization_url",
    "token_url",
    "device_authorization_url",
    "registration_url",
    "revocation_url",
    "discovery_url",
    "userinfo_url",
    "app_setup_url",
    "base_url_default",
)
_OAUTH_ENV_VARS = ("client_id_env", "client_secret_env", "env_var")
# Stored or computed names that a credential field may not shadow.
RESERVED_FIELD_NAMES = frozenset(
    {
        "access_token",
        "refresh_token",
        "id_token",
        "token_type",
        "expires_at",
        "scopes",
        "client_id",
        "client_secret",
        "status",
        "provider",
        "connection",
        "auth_type",
        "flow",
        "created_at",
        "updated_at",
        "base_url",
    }
)


def is_valid_name(name: object) -> bool:
    """Provider (and connection) names: ``^[a-z0-9][a-z0-9._-]*$``, no '..', at most 64 chars."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= MAX_NAME_LENGTH
        and name[0] in _NAME_FIRST
        and all(ch in _NAME_CHARS for ch in name)
        and ".." not in name
    )


def is_env_var(name: object) -> bool:
    return isinstance(name, str) and bool(name) and name[0] in _ENV_FIRST and all(c in _ENV_CHARS for c in name)


def is_header_name(name: object) -> bool:
    return isinstance(name, str) and bool(name) and all(c in _TOKEN_CHARS for c in name)


def is_field_name(name: object) -> bool:
    return (
        isinstance(name, str)
        and 0 < len(name) <= MAX_NAME_LENGTH
        and name[0] in _FIELD_FIRST
        and all(c in _FIELD_CHARS for c in name)
    )


class _Checker:
    """Raises ProviderDefinitionError with the file and field in the message."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, field: str, problem: str) -> ProviderDefinitionError:
        return ProviderDefinitionError(
            f"Invalid provider definition in {self.where}: field '{field}': {problem}",
            hint="Fix the file; docs/provider-format.md describes the format.",
        )

    def text(self, value: object, field: str, *, required: bool = True, max_length: int = 200) -> str | None:
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(field, "must be a non-empty string.")
        if len(value) > max_length or has_control_characters(value):
            raise self.fail(field, f"must be at most {max_length} characters with no control characters.")
        return value

    def env_var(self, value: object, field: str) -> str | None:
        if value is None:
            return None
        if not is_env_var(value):
            raise self.fail(field, f"{value!r} is not an environment variable name (^[A-Z_][A-Z0-9_]*$).")
        return value

    def header(self, value: object, field: str) -> str:
        if not is_header_name(value):
            raise self.fail(field, f"{value!r} is not a valid HTTP header name.")
        return value

    def prefix(self, value: object, field: str) -> str:
        if value is None:
            return ""
        if not isinstance(value, str) or has_control_characters(value) or value != value.strip():
            raise self.fail(field, "must be a string without control characters or surrounding spaces.")
        return value

    def url(self, value: object, field: str, *, template_ok: bool) -> str | None:
        if value is None:
            return None
        problem = _url_problem(value, template_ok)
        if problem:
            raise self.fail(field, problem)
        return value

    def boolean(self, value: object, field: str, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(field, "must be true or false.")
        return value


def _url_problem(value: object, template_ok: bool) -> str | None:
    from urllib.parse import urlsplit

    from authsome.providers.hosts import normalize_host

    if not isinstance(value, str) or not value or has_control_characters(value) or " " in value:
        return "must be a URL string."
    if value.startswith("{base_url}"):
        if not template_ok:
            return "may not use {base_url} here."
        return None if "{" not in value[len("{base_url}") :] else "has an unknown template."
    if "{" in value or "}" in value:
        return "may only be templated as '{base_url}/...'."
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return f"{value!r} is not a valid URL."
    if not host or parts.username is not None or parts.password is not None:
        return f"{value!r} is not a valid https URL."
    canonical = normalize_host(host)
    if parts.scheme == "https" and canonical:
        return None
    if parts.scheme == "http" and _is_loopback(host):
        return None  # local test servers only
    return f"{value!r} must be an https URL."


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_provider(data: dict, *, source: str, path: str | None = None) -> Provider:
    """Validate ``data`` (current format or schema 1) and build a Provider."""
    name = data.get("name") if isinstance(data, dict) else None
    where = path if path else (f"provider {name!r}" if isinstance(name, str) else "provider definition")
    check = _Checker(where)
    if not isinstance(data, dict):
        raise check.fail("(root)", "a provider definition must be a JSON object.")
    if source not in ("bundled", "custom"):
        raise ValueError(f"unknown provider source {source!r}")

    version = data.get("schema_version", 2)
    if isinstance(version, bool) or version not in (1, 2):
        raise check.fail("schema_version", "must be 1 or 2.")
    if not is_valid_name(name):
        raise check.fail(
            "name",
            f"{name!r} must match ^[a-z0-9][a-z0-9._-]*$, contain no '..' and be at most {MAX_NAME_LENGTH} characters.",
        )
    display_name = data.get("display_name")
    if display_name is None and version == 1:
        display_name = name
    display_name = check.text(display_name, "display_name", max_length=100)

    auth_type = data.get("auth_type")
    if auth_type not in AUTH_TYPES:
        raise check.fail("auth_type", f"{auth_type!r} must be one of {', '.join(AUTH_TYPES)}.")
    flow = data.get("flow")
    if flow not in FLOWS:
        raise check.fail("flow", f"{flow!r} must be one of {', '.join(FLOWS)}.")
    if (auth_type == "api_key") != (flow == "api_key"):
        raise check.fail("flow", f"{flow!r} does not fit auth_type {auth_type!r}.")
    flows = _parse_flows(data, flow, version, check)

    docs_url = check.url(data.get("docs_url"), "docs_url", template_ok=False)
    oauth = _parse_oauth(data.get("oauth"), flows, version, check)
    if oauth is not None and version == 1:
        for key, value in _schema1_client(data.get("client"), check).items():
            oauth.setdefault(key, value)
    base_url_default = check.url(data.get("base_url_default"), "base_url_default", template_ok=False)
    if base_url_default is None and oauth:
        base_url_default = oauth.get("base_url_default")
    hosts = _parse_hosts(data, version, check)
    fields, api_key = _parse_api_key(data, flows, version, check)
    export_override = _parse_export(data.get("export"), check)

    return Provider(
        name=name,
        display_name=display_name,
        auth_type=auth_type,
        flow=flow,
        flows=flows,
        docs_url=docs_url,
        hosts=hosts,
        api_key=api_key,
        oauth=oauth,
        fields=fields,
        schema_version=version,
        base_url_default=base_url_default,
        raw=data,
        source=source,
        path=path,
        export_override=export_override,
    )


def _parse_flows(data: dict, flow: str, version: int, check: _Checker) -> list[str]:
    others = data.get("flows", [])
    if not isinstance(others, list):
        raise check.fail("flows", "must be a list of flow names.")
    for i, other in enumerate(others):
        if other not in FLOWS:
            raise check.fail(f"flows[{i}]", f"{other!r} must be one of {', '.join(FLOWS)}.")
    oauth = data.get("oauth")
    if version == 1 and isinstance(oauth, dict):
        # The older format spelled the extra OAuth flows as booleans.
        if oauth.get("supports_device_flow") is True and oauth.get("device_authorization_url"):
            others = [*others, "device_code"]
        if oauth.get("supports_dcr") is True:
            others = [*others, "dcr_pkce"]
    return list(dict.fromkeys([flow, *others]))


def _parse_hosts(data: dict, version: int, check: _Checker) -> list[str]:
    from authsome.providers.hosts import normalize_pattern

    if version == 1 and "hosts" not in data:
        host_url = data.get("host_url")
        if host_url is None:
            return []  # older files may name no host: usable for get/export, never injected
        return [_convert_host_url(host_url, check)]
    hosts = data.get("hosts")
    if not isinstance(hosts, list) or not hosts:
        raise check.fail("hosts", "must be a non-empty list of hosts or whole-label wildcards.")
    out: list[str] = []
    for i, entry in enumerate(hosts):
        if entry in ("{base_host}", "*.{base_host}"):
            out.append(entry)
            continue
        canonical = normalize_pattern(entry) if isinstance(entry, str) else None
        if canonical is None:
            raise check.fail(f"hosts[{i}]", f"{entry!r} is not a host or a whole-label wildcard.")
        out.append(canonical)
    return list(dict.fromkeys(out))


def _convert_host_url(host_url: object, check: _Checker) -> str:
    from urllib.parse import urlsplit

    from authsome.providers.hosts import normalize_host
    from authsome.providers.regex_check import convert_regex_host

    if not isinstance(host_url, str) or not host_url:
        raise check.fail("host_url", "must be a host, a URL or 'regex:<pattern>'.")
    if host_url.startswith("regex:"):
        converted = convert_regex_host(host_url[len("regex:") :])
        if converted is None:
            raise check.fail(
                "host_url",
                f"{host_url!r} is not a literal host or a whole-label wildcard "
                "(e.g. 'regex:api\\.acme\\.example' or 'regex:[a-z0-9-]+\\.acme\\.example').",
            )
        return converted
    if "://" in host_url:
        problem = _url_problem(host_url, template_ok=False)
        if problem is None or host_url.startswith("http://"):
            try:
                host = urlsplit(host_url).hostname
            except ValueError:
                host = None
            canonical = normalize_host(host) if host and "@" not in host_url.split("/")[2] else None
            if canonical:
                return canonical
        raise check.fail("host_url", f"{host_url!r} is not a valid URL.")
    canonical = normalize_host(host_url)
    if canonical is None:
        raise check.fail("host_url", f"{host_url!r} is not a valid host.")
    return canonical


def _parse_export(export: object, check: _Checker) -> dict[str, str]:
    if export is None:
        return {}
    env = export.get("env") if isinstance(export, dict) else None
    if not isinstance(export, dict) or not isinstance(env, dict):
        raise check.fail("export", "must be an object with an 'env' object.")
    for key, var in env.items():
        if not is_field_name(key):
            raise check.fail(f"export.env.{key}", "is not a field name.")
        check.env_var(var, f"export.env.{key}")
    return dict(env)


def _parse_oauth(oauth: object, flows: list[str], version: int, check: _Checker) -> dict | None:
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


def _schema1_client(client: object, check: _Checker) -> dict:
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


def _parse_api_key(
    data: dict, flows: list[str], version: int, check: _Checker
) -> tuple[list[CredentialField], dict | None]:
    from authsome.providers.api_key_spec import parse_api_key_section

    return parse_api_key_section(data, flows, version, check)
