"""parse_provider: validate a provider definition (current or schema 1) into a Provider.

Every refusal is a ProviderDefinitionError naming the file and the exact
field, e.g. ``field 'hosts[1]'``. See docs/provider-format.md.
"""

from __future__ import annotations

from authsome.errors import ProviderDefinitionError
from authsome.loopback import is_loopback_host
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
    if parts.scheme == "http" and is_loopback_host(host):
        return None  # local test servers only
    return f"{value!r} must be an https URL."


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
    from authsome.providers.oauth_spec import parse_oauth_section

    oauth = parse_oauth_section(data, flows, version, check)
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


def _parse_api_key(
    data: dict, flows: list[str], version: int, check: _Checker
) -> tuple[list[CredentialField], dict | None]:
    from authsome.providers.api_key_spec import parse_api_key_section

    return parse_api_key_section(data, flows, version, check)
