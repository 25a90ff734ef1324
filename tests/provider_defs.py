"""Builders of api_key provider-definition dicts shared by the tests (current schema and schema 1).

Each call returns a new dict, so a test may change what it gets without touching another's.
"""

from __future__ import annotations


def api_key_provider(
    name: str = "acme",
    display_name: str = "Acme",
    *,
    host: str | None = None,
    header_name: str = "Authorization",
    header_prefix: str = "Bearer",
    schema_version: int | None = None,
) -> dict:
    """An api_key provider on one host (default ``api.<name>.example``), key in ``<NAME>_API_KEY``."""
    data: dict = {} if schema_version is None else {"schema_version": schema_version}
    data.update(
        name=name,
        display_name=display_name,
        auth_type="api_key",
        flow="api_key",
        hosts=[host or f"api.{name}.example"],
        api_key={"header_name": header_name, "header_prefix": header_prefix, "env_var": f"{name.upper()}_API_KEY"},
    )
    return data


def schema1_api_key_provider(name: str = "acme", display_name: str = "Acme") -> dict:
    """The same provider in schema 1: one ``host_url`` instead of ``hosts``, and an explicit export block."""
    data = api_key_provider(name, display_name, schema_version=1)
    data["host_url"] = data.pop("hosts")[0]
    data["export"] = {"env": {"api_key": data["api_key"]["env_var"]}}
    return data
