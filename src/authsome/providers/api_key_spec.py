"""The ``api_key`` and ``fields`` sections: placement, fields, patterns."""

from __future__ import annotations

from authsome.providers.model import CredentialField

# Headers that frame or route a request: a credential may never be put there.
_FORBIDDEN_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-connection",
    }
)


def parse_api_key_section(data: dict, flows: list[str], version: int, check) -> tuple[list, dict | None]:
    """Return (credential fields, normalized api_key dict) for a provider offering the api_key flow."""
    spec = data.get("api_key")
    if "api_key" not in flows:
        if version != 1 and (spec is not None or data.get("fields") is not None):
            raise check.fail("flows", "'api_key'/'fields' are given, so 'flows' must list 'api_key'.")
        return [], None
    if not isinstance(spec, dict):
        raise check.fail("api_key", "is required (an object) for the api_key flow.")
    spec = dict(spec)
    placements = [k for k in ("header_name", "query_param") if k in spec]
    if "basic_username" in spec or "basic_password" in spec:
        placements.append("basic")
    if not placements and version == 1:
        spec["header_name"], spec["header_prefix"] = "Authorization", "Bearer"
        placements = ["header_name"]
    if len(placements) != 1:
        raise check.fail(
            "api_key",
            "needs exactly one placement: 'header_name', 'query_param', or 'basic_username'/'basic_password'.",
        )
    fields = _parse_fields(data, spec, check)
    names = [f.name for f in fields]

    if "header_name" in spec:
        _credential_header(spec["header_name"], "api_key.header_name", check)
        spec["header_prefix"] = check.prefix(spec.get("header_prefix"), "api_key.header_prefix")
    if "query_param" in spec:
        param = spec["query_param"]
        if not isinstance(param, str) or not param or not all(c in _QUERY_CHARS for c in param):
            raise check.fail("api_key.query_param", f"{param!r} is not a plain query parameter name.")
    if placements[0] in ("header_name", "query_param"):
        value_field = spec.get("value_field", "api_key")
        if value_field not in names:
            raise check.fail("api_key.value_field", f"{value_field!r} is not one of the credential fields.")
    else:
        used: set[str] = set()
        for key in ("basic_username", "basic_password"):
            spec[key] = spec.get(key, "")
            used |= _template(spec[key], f"api_key.{key}", names, check)
        if not used:
            raise check.fail("api_key.basic_password", "the Basic credentials use no credential field.")
        for f in fields:
            if "{" + f.name + "}" in spec["basic_username"]:
                f.no_colon = True

    extra = spec.get("extra_headers")
    if extra is not None:
        if not isinstance(extra, dict):
            raise check.fail("api_key.extra_headers", "must be an object of header name -> template.")
        taken = {spec["header_name"].lower()} if "header_name" in spec else {"authorization"}
        if "query_param" in spec:
            taken = set()
        for header, template in extra.items():
            where = f"api_key.extra_headers.{header}"
            _credential_header(header, where, check)
            if header.lower() in taken:
                raise check.fail(where, "repeats a header the credential already uses.")
            taken.add(header.lower())
            _template(template, where, names, check)
    return fields, spec


_QUERY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._~-")


def _credential_header(name: object, where: str, check) -> None:
    check.header(name, where)
    if name.lower() in _FORBIDDEN_HEADERS:
        raise check.fail(where, f"{name!r} cannot carry a credential.")


def _template(template: object, where: str, names: list[str], check) -> set[str]:
    from authsome.providers.model import has_control_characters
    from authsome.providers.templates import parse_placeholders

    if not isinstance(template, str) or has_control_characters(template):
        raise check.fail(where, "must be a string template such as '{api_key}'.")
    used = parse_placeholders(template)
    if used is None:
        raise check.fail(where, f"{template!r} has a '{{' or '}}' that is not part of a {{field}} placeholder.")
    unknown = sorted(used - set(names))
    if unknown:
        raise check.fail(where, f"{{{unknown[0]}}} is not one of the credential fields.")
    return used


def _pattern(pattern: object, hint: object, where_pattern: str, where_hint: str, check) -> tuple:
    from authsome.providers.regex_check import key_pattern_problem

    if pattern is None:
        if hint is not None:
            check.text(hint, where_hint, max_length=300)
        return None, hint
    problem = key_pattern_problem(pattern)
    if problem:
        raise check.fail(where_pattern, problem + ".")
    if hint is None:
        raise check.fail(where_hint, "is required when a pattern is set: say what a valid value looks like.")
    return pattern, check.text(hint, where_hint, max_length=300)


def _parse_fields(data: dict, spec: dict, check) -> list[CredentialField]:
    from authsome.providers.parse import RESERVED_FIELD_NAMES, is_field_name

    raw_fields = data.get("fields")
    if raw_fields is None:
        env_var = check.env_var(spec.get("env_var"), "api_key.env_var")
        pattern, hint = _pattern(
            spec.get("key_pattern"),
            spec.get("key_pattern_hint"),
            "api_key.key_pattern",
            "api_key.key_pattern_hint",
            check,
        )
        return [CredentialField("api_key", "API key", True, env_var, pattern, hint)]

    if not isinstance(raw_fields, list) or not raw_fields:
        raise check.fail("fields", "must be a non-empty list of field objects.")
    for key in ("env_var", "key_pattern", "key_pattern_hint"):
        if spec.get(key) is not None:
            raise check.fail(f"api_key.{key}", "set it on the field in 'fields' instead.")
    fields: list[CredentialField] = []
    seen: set[str] = set()
    for i, item in enumerate(raw_fields):
        where = f"fields[{i}]"
        if not isinstance(item, dict):
            raise check.fail(where, "must be an object.")
        name = item.get("name")
        if not is_field_name(name):
            raise check.fail(f"{where}.name", f"{name!r} must match ^[a-z][a-z0-9_]*$.")
        if name in RESERVED_FIELD_NAMES:
            raise check.fail(f"{where}.name", f"{name!r} is reserved.")
        if name in seen:
            raise check.fail(f"{where}.name", f"{name!r} is used twice.")
        seen.add(name)
        label = item.get("label")
        label = check.text(label, f"{where}.label", max_length=60) if label is not None else None
        secret = check.boolean(item.get("secret"), f"{where}.secret", True)
        env_var = check.env_var(item.get("env_var"), f"{where}.env_var")
        pattern, hint = _pattern(item.get("pattern"), item.get("hint"), f"{where}.pattern", f"{where}.hint", check)
        default_label = "API key" if name == "api_key" else name.replace("_", " ")
        fields.append(CredentialField(name, label or default_label, secret, env_var, pattern, hint))
    if not any(f.secret for f in fields):
        raise check.fail("fields", "at least one field must be secret.")
    return fields
