"""Which connections `authsome run` injects, as proxy routes (least privilege with --provider)."""

from __future__ import annotations

from authsome.errors import NotLoggedInError, UsageError


def parse_selection(specs: list[str]) -> list[tuple[str, str | None]]:
    """``["openai", "github:work"]`` -> ``[("openai", None), ("github", "work")]``."""
    selection = []
    for spec in specs:
        name, _, connection = spec.partition(":")
        if not name or (spec.endswith(":") and not connection):
            raise UsageError(f"--provider {spec!r} is not NAME or NAME:CONNECTION.")
        selection.append((name, connection or None))
    return selection


def routes_for(client, selection: list[tuple[str, str | None]] | None = None) -> list:
    """One route per selected connection; by default the default connection of every connected provider.

    A provider named with ``--provider`` that has no connection fails fast (exit 5), before the child starts.
    """
    from authsome.proxy.routes import Route

    if selection is None:
        defaults = client.store.all_defaults()
        selection = sorted(defaults.items())
        if not selection:
            raise NotLoggedInError(
                "No provider is connected, so there is nothing to inject.",
                hint="Log in first, e.g. 'authsome login openai'.",
            )
    routes = []
    seen = set()
    for provider_name, connection in selection:
        provider, record = client.resolve(provider_name, connection)
        if provider.name in seen:
            raise UsageError(f"--provider {provider.name} is given twice; one connection per provider.")
        seen.add(provider.name)
        base_url = record.metadata.get("base_url")
        routes.append(
            Route(
                provider.name,
                record.connection,
                provider.resolved_hosts(base_url),
                _injection_source(client, provider, record.connection),
                env_vars=sorted(set(provider.export_env().values())),
            )
        )
    # An exact host beats a wildcard of another provider (gemini's host inside google's *.googleapis.com).
    routes.sort(key=lambda r: min(h.startswith("*.") for h in r.hosts) if r.hosts else True)
    return routes


def _injection_source(client, provider, connection: str):
    def lookup():
        # Re-reads the record each time: a rotated key or a refreshed OAuth token is picked up.
        _, record = client.resolve(provider.name, connection)
        return provider.injection(client.credential_secrets(provider.name, connection, _resolved=(provider, record)))

    return lookup
