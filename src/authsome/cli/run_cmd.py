"""``authsome run``: run a command whose requests get credentials injected by a local proxy."""

from __future__ import annotations

import click

from authsome.cli.app import command


@command(
    "run",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option("--provider", "-p", "providers", multiple=True, metavar="NAME[:CONNECTION]",
              help="Inject only these connections (repeatable). Default: every provider's default connection.")
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
def run_cmd(client, as_json, providers, cmd):
    """Run CMD; it sees placeholders (OPENAI_API_KEY=authsome-proxy-managed), never the secrets.

    \b
    authsome run -- python my_agent.py
    authsome run --provider openai --provider github:work -- ./agent.sh
    """
    from authsome.proxy.runner import run_with_proxy
    from authsome.run_routes import parse_selection, routes_for

    selection = parse_selection(list(providers)) if providers else None
    routes = routes_for(client, selection)
    audit = client.audit

    def record(event: dict) -> None:
        audit.record("inject", buffered=True, **event)

    try:
        return run_with_proxy(list(cmd), routes, audit=record)
    finally:
        audit.flush()
