"""Provider and CredentialField: a validated provider definition in memory.

Plain classes, no heavy imports: ``authsome get`` loads one provider on its
fast path. Parsing and validation live in ``parse.py``; this module only
describes a provider that is already known to be valid.
"""

from __future__ import annotations

from authsome.errors import InvalidCredentialError, NotLoggedInError

#: Stored field names that ``export`` must never hand out.
NEVER_EXPORTED = frozenset({"refresh_token", "client_secret", "id_token"})
OAUTH_FLOWS = ("pkce", "device_code", "dcr_pkce")


def has_control_characters(value: str) -> bool:
    """True for C0/C1 controls, DEL and Unicode line/paragraph separators."""
    return any(ord(ch) < 32 or 127 <= ord(ch) < 160 or ch in "\u2028\u2029" for ch in value)


class CredentialField:
    """One part of a credential: an API key, an account SID, an e-mail address."""

    __slots__ = ("name", "label", "secret", "env_var", "pattern", "hint", "no_colon")

    def __init__(
        self,
        name: str,
        label: str,
        secret: bool = True,
        env_var: str | None = None,
        pattern: str | None = None,
        hint: str | None = None,
        no_colon: bool = False,
    ) -> None:
        self.name = name
        self.label = label
        self.secret = secret
        self.env_var = env_var
        self.pattern = pattern
        self.hint = hint
        # A value used as an HTTP Basic user-id cannot contain ':' (RFC 7617).
        self.no_colon = no_colon

    def __repr__(self) -> str:
        return f"CredentialField({self.name!r}, secret={self.secret})"

    def validate(self, value: str, provider_display_name: str) -> None:
        """Raise InvalidCredentialError unless ``value`` is acceptable; never echoes the value."""
        ok = (
            isinstance(value, str)
            and value != ""
            and value == value.strip()
            and not has_control_characters(value)
            and not (self.no_colon and ":" in value)
        )
        if ok and self.pattern is not None:
            import re

            ok = re.fullmatch(self.pattern, value) is not None
        if not ok:
            raise InvalidCredentialError(
                f"This does not look like a valid {provider_display_name} {self.label}.", hint=self.hint
            )

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "label": self.label,
            "secret": self.secret,
            "env_var": self.env_var,
            "pattern": self.pattern,
            "hint": self.hint,
        }


class Injection:
    """What the proxy (or the library) adds to a request for one connection."""

    __slots__ = ("headers", "query", "replaces", "secret_values")

    def __init__(self) -> None:
        self.headers: list[tuple[str, str]] = []
        self.query: list[tuple[str, str]] = []
        # Lower-case header names to strip from the client's request first.
        self.replaces: list[str] = []
        # Raw secret values, so a caller can scrub them from anything it echoes.
        self.secret_values: list[str] = []

    def __repr__(self) -> str:
        # Header values hold secrets: show names only.
        names = [name for name, _ in self.headers]
        params = [name for name, _ in self.query]
        return f"Injection(headers={names}, query={params})"


def join_prefix(prefix: str, value: str) -> str:
    """``Bearer`` + value -> ``Bearer value``; a prefix ending in '=' (``Token token=``) takes no space."""
    if not prefix:
        return value
    return prefix + value if prefix.endswith("=") else f"{prefix} {value}"


def render_template(template: str, values: dict[str, str]) -> str:
    """Replace ``{field}`` placeholders; templates were checked at parse time."""
    out = template
    for name, value in values.items():
        out = out.replace("{" + name + "}", value)
    return out


class Provider:
    """A validated provider definition. Build one with ``parse_provider``."""

    def __init__(self, **attrs) -> None:
        self.name: str = attrs["name"]
        self.display_name: str = attrs["display_name"]
        self.auth_type: str = attrs["auth_type"]
        self.flow: str = attrs["flow"]
        self.flows: list[str] = attrs["flows"]
        self.docs_url: str | None = attrs["docs_url"]
        self.hosts: list[str] = attrs["hosts"]
        self.api_key: dict | None = attrs["api_key"]
        self.oauth: dict | None = attrs["oauth"]
        self.fields: list[CredentialField] = attrs["fields"]
        self.schema_version: int = attrs["schema_version"]
        self.base_url_default: str | None = attrs["base_url_default"]
        self.raw: dict = attrs["raw"]
        self.source: str = attrs["source"]
        self.path: str | None = attrs["path"]
        self._export_override: dict[str, str] = attrs["export_override"]

    def __repr__(self) -> str:
        return f"Provider({self.name!r}, source={self.source!r})"

    # -- fields -----------------------------------------------------------
    def field(self, name: str) -> CredentialField | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    @property
    def secret_field_names(self) -> list[str]:
        return [f.name for f in self.fields if f.secret]

    def validate_credential(self, values: dict[str, str]) -> None:
        """Validate every field of an API-key credential (all fields required)."""
        for f in self.fields:
            f.validate(values.get(f.name, ""), self.display_name)

    # -- hosts --------------------------------------------------------------
    def resolved_hosts(self, base_url: str | None = None) -> list[str]:
        """Host patterns for a connection, with ``{base_host}`` filled in.

        ``{base_host}`` is the host of ``base_url`` (or of ``base_url_default``).
        When the provider has templated entries and ``base_url`` names another
        host than the default (GitHub Enterprise, self-hosted GitLab), only the
        templated entries apply, so a self-hosted token never goes to the
        public service.
        """
        templated = [p for p in self.hosts if "{base_host}" in p]
        if not templated:
            return list(self.hosts)
        default_host = _url_host(self.base_url_default)
        wanted_host = _url_host(base_url) if base_url else default_host
        if wanted_host is None:
            return [p for p in self.hosts if "{base_host}" not in p] if not base_url else []
        chosen = templated if wanted_host != default_host else self.hosts
        return list(dict.fromkeys(p.replace("{base_host}", wanted_host) for p in chosen))

    def matches_host(self, host: str, base_url: str | None = None) -> bool:
        from authsome.providers.hosts import host_matches

        return any(host_matches(pattern, host) for pattern in self.resolved_hosts(base_url))

    # -- export and injection -------------------------------------------------
    def export_env(self) -> dict[str, str]:
        """Stored field name -> environment variable name, for ``export`` and ``run``."""
        mapping: dict[str, str] = {}
        for f in self.fields:
            if f.env_var:
                mapping[f.name] = f.env_var
        if self.oauth and self.oauth.get("env_var"):
            mapping["access_token"] = self.oauth["env_var"]
        mapping.update(self._export_override)
        return {k: v for k, v in mapping.items() if k not in NEVER_EXPORTED}

    def injection(self, secrets: dict[str, str], *, flow: str | None = None) -> Injection:
        """Headers/query parameters carrying this connection's credential.

        ``flow`` is the connection's flow; without it, a stored ``access_token``
        means an OAuth connection and anything else an API-key connection.
        """
        if flow:
            oauth_connection = flow in OAUTH_FLOWS
        else:
            oauth_connection = bool(self.oauth) and ("access_token" in secrets or self.api_key is None)
        if (oauth_connection and not self.oauth) or (not oauth_connection and not self.api_key):
            # The definition changed under a stored connection (e.g. a custom override).
            raise NotLoggedInError(
                f"The definition of {self.name} no longer describes how to send this credential.",
                hint=f"Log in again with 'authsome login {self.name} --force'.",
            )
        inj = Injection()
        if oauth_connection:
            self._inject_oauth(secrets, inj)
        else:
            self._inject_api_key(secrets, inj)
        return inj

    def _value(self, secrets: dict[str, str], name: str) -> str:
        value = secrets.get(name)
        if not isinstance(value, str) or value == "":
            raise NotLoggedInError(
                f"The stored credential for {self.name} has no '{name}'.",
                hint=f"Log in again with 'authsome login {self.name} --force'.",
            )
        if has_control_characters(value):
            raise InvalidCredentialError(
                f"The stored '{name}' for {self.name} contains control characters and cannot be sent.",
                hint=f"Log in again with 'authsome login {self.name} --force'.",
            )
        return value

    def _inject_oauth(self, secrets: dict[str, str], inj: Injection) -> None:
        oauth = self.oauth or {}
        token = self._value(secrets, "access_token")
        header = oauth.get("header_name") or "Authorization"
        prefix = oauth.get("header_prefix")
        prefix = "Bearer" if prefix is None else prefix
        inj.headers.append((header, join_prefix(prefix, token)))
        inj.replaces.append(header.lower())
        inj.secret_values.append(token)

    def _inject_api_key(self, secrets: dict[str, str], inj: Injection) -> None:
        spec = self.api_key or {}
        used = sorted(_template_names(spec), key=lambda n: [f.name for f in self.fields].index(n))
        values = {name: self._value(secrets, name) for name in used}
        for name in used:
            f = self.field(name)
            if f is not None and f.secret:
                inj.secret_values.append(values[name])
        if "header_name" in spec:
            value = values[spec.get("value_field", "api_key")]
            inj.headers.append((spec["header_name"], join_prefix(spec.get("header_prefix") or "", value)))
            inj.replaces.append(spec["header_name"].lower())
        elif "query_param" in spec:
            inj.query.append((spec["query_param"], values[spec.get("value_field", "api_key")]))
        else:
            import base64

            user = render_template(spec.get("basic_username", ""), values)
            password = render_template(spec.get("basic_password", ""), values)
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            inj.headers.append(("Authorization", "Basic " + token))
            inj.replaces.append("authorization")
            inj.secret_values.append(token)
        for header, template in (spec.get("extra_headers") or {}).items():
            inj.headers.append((header, render_template(template, values)))
            inj.replaces.append(header.lower())

    # -- views ----------------------------------------------------------------
    def to_dict(self) -> dict:
        """Normalized view for ``authsome inspect`` (providers hold no secrets)."""
        return {
            "name": self.name,
            "display_name": self.display_name,
            "auth_type": self.auth_type,
            "flow": self.flow,
            "flows": list(self.flows),
            "docs_url": self.docs_url,
            "hosts": list(self.hosts),
            "api_key": dict(self.api_key) if self.api_key is not None else None,
            "fields": [f.to_dict() for f in self.fields],
            "oauth": dict(self.oauth) if self.oauth is not None else None,
            "export_env": self.export_env(),
            "schema_version": self.schema_version,
            "source": self.source,
            "path": self.path,
        }


def _template_names(spec: dict) -> set[str]:
    """Field names an ``api_key`` placement uses."""
    from authsome.providers.templates import placeholders

    names: set[str] = set()
    if "header_name" in spec or "query_param" in spec:
        names.add(spec.get("value_field", "api_key"))
    else:
        names |= placeholders(spec.get("basic_username", ""))
        names |= placeholders(spec.get("basic_password", ""))
    for template in (spec.get("extra_headers") or {}).values():
        names |= placeholders(template)
    return names


def _url_host(url: str | None) -> str | None:
    if not url:
        return None
    from urllib.parse import urlsplit

    from authsome.providers.hosts import normalize_host

    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return normalize_host(host) if host else None
