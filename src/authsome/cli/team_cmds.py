"""CLI for the team backend: ``init --backend openbao`` and ``migrate``. Parsing and rendering only."""

from __future__ import annotations

import click

from authsome.cli import output
from authsome.cli.app import command
from authsome.errors import StoreError, UsageError


def _read_credential(team: dict, from_stdin: bool):
    from authsome.secret_input.pipeline import has_display
    from authsome.vault.team_init import read_engine_credential

    source = "stdin" if from_stdin else ("auto" if has_display() else "terminal")
    return read_engine_credential(team, source=source, announce=output.message)


def init_team(client, as_json, key_source, backend, urls, mount, prefix, auth, role_id, from_stdin) -> int:
    """``init`` with team options: check the engine credential, then point the home at the engine."""
    from authsome.vault.team_init import initialize_team_home, team_settings, verify_credential

    config = client.config
    current = (config or {}).get("backend", "local")
    if backend in (None, "local"):
        if urls or mount or prefix or auth or role_id or from_stdin:
            raise UsageError("--url, --mount, --prefix, --auth, --role-id and --stdin go with --backend openbao.")
        if current != "local":
            raise StoreError(
                "This home uses the team vault; init does not switch it back silently.",
                hint="Run 'authsome migrate --to local' to bring the connections back to the local vault.",
            )
        client.ensure_initialized(key_source)
        return 0
    team = team_settings(urls, mount, prefix, auth, role_id)
    credential = _read_credential(team, from_stdin)
    checked = verify_credential(team, credential)
    ask = _ask_passphrase(client)
    config = initialize_team_home(
        client.home, team, credential, key_source=key_source, notice=output.message, ask_passphrase=ask
    )
    result = {
        "home": str(client.home.path),
        "key_source": config["key_source"],
        "backend": "openbao",
        "engine": team["urls"][0],
        "path": f"{team['mount']}/{team['prefix']}",
        "auth": team["auth"],
        "policies": checked.get("policies") or [],
    }
    if as_json:
        output.emit_json(result)
    else:
        output.success(
            f"This home now uses the team vault at {result['engine']} ({result['path']}, "
            f"policies: {', '.join(result['policies']) or 'none'})."
        )
    return 0


def _ask_passphrase(client):
    from authsome.vault.local import ask_passphrase_on_terminal

    return ask_passphrase_on_terminal if client._interactive else None


@command("migrate")
@click.option("--to", "target", type=click.Choice(["openbao", "local"]), required=True, help="Backend to move to.")
@click.option("--url", "urls", multiple=True, metavar="URL", help="Team engine address (with --to openbao).")
@click.option("--mount", metavar="M", help="KV v2 mount (default: secret).")
@click.option("--prefix", metavar="P", help="Path prefix under the mount (default: authsome).")
@click.option("--auth", type=click.Choice(["token", "approle"]), help="How to log in to the team engine.")
@click.option("--role-id", metavar="ID", help="AppRole role id.")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the engine token or secret id from standard input.")
@click.option("--keep-source", is_flag=True, help="Keep the copied connections in the backend they came from.")
def migrate_cmd(client, as_json, target, urls, mount, prefix, auth, role_id, from_stdin, keep_source):
    """Copy every connection to another backend, verify, then remove the source."""
    from authsome.vault.backend import open_team_store
    from authsome.vault.local import open_local_store
    from authsome.vault.team_init import store_credential, switch_to_local, team_settings, verify_credential
    from authsome.vault.team_migrate import copy_all, remove_source

    config = client.ensure_initialized()
    current = config.get("backend", "local")
    if current == target:
        raise UsageError(f"This home already uses the {target} backend; nothing to migrate.")
    ask = _ask_passphrase(client)
    local = open_local_store(client.home, config, ask_passphrase=ask)
    if target == "openbao":
        team = team_settings(urls, mount, prefix, auth, role_id)
        credential = _read_credential(team, from_stdin)
        verify_credential(team, credential)
        store_credential(local, team, credential)
        new_config = dict(config, backend="openbao", team=team)
        source, destination = local, open_team_store(new_config, local, cache=False)
    else:
        if urls or mount or prefix or auth or role_id or from_stdin:
            raise UsageError("--url, --mount, --prefix, --auth, --role-id and --stdin go with --to openbao.")
        source, destination = open_team_store(config, local, cache=False), local
    try:
        providers = [r.provider for r in source.list_connections()]
        counts = copy_all(source, destination)
        if target == "openbao":
            client.home.save_config(new_config)
        else:
            switch_to_local(client.home, config)
        if not keep_source:
            remove_source(source, providers)
    finally:
        (destination if target == "openbao" else source).close()
    result = {"to": target, **counts, "source_removed": not keep_source}
    if as_json:
        output.emit_json(result)
    else:
        kept = "kept" if keep_source else "removed"
        output.success(
            f"Migrated {counts['connections']} connection(s) to the {target} backend (verified; source {kept})."
        )
    return 0
