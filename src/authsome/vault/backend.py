"""Choosing a home's store by ``config["backend"]``: the local vault (default) or the team engine."""

from __future__ import annotations

from authsome.errors import StoreError

BACKENDS = ("local", "openbao")


def open_store(home, config: dict | None, ask_passphrase=None, notice=None):
    """The store of ``home``. The team backend's modules (and its HTTP client) load only for a team home."""
    from authsome.vault.local import open_local_store

    local = open_local_store(home, config, ask_passphrase=ask_passphrase)
    backend = (config or {}).get("backend", "local")
    if backend == "local":
        return local
    if backend == "openbao":
        return open_team_store(config, local, notice=notice)
    raise StoreError(
        f"{home.config_path} names an unknown backend '{backend}'.",
        hint=f"Known backends: {', '.join(BACKENDS)}. Upgrade authsome if this home was set up by a newer release.",
    )


def open_team_store(config: dict, local, *, notice=None, cache: bool = True):
    """The team store; ``cache`` keeps the offline cache (served only when AUTHSOME_OFFLINE_OK=1)."""
    from authsome.vault.openbao_auth import TokenSource
    from authsome.vault.openbao_cache import OfflineCache, offline_ok_requested
    from authsome.vault.openbao_engine import Engine
    from authsome.vault.openbao_store import OpenBaoStore

    team = config.get("team") or {}
    source = TokenSource(team, local)
    engine = Engine(list(team.get("urls") or []), source)
    source.engine = engine
    return OpenBaoStore(
        engine,
        local,
        mount=team.get("mount", "secret"),
        prefix=team.get("prefix", "authsome"),
        auth=source,
        cache=OfflineCache(local, serve=offline_ok_requested(), notice=notice) if cache else None,
    )
