"""``authsome run``: run a command whose requests get credentials injected by a local proxy."""

from __future__ import annotations

import click

from authsome.cli.app import command, offline_option


@command(
    "run",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option("--provider", "-p", "providers", multiple=True, metavar="NAME[:CONNECTION]",
              help="Inject only these connections (repeatable). Default: every provider's default connection.")
@offline_option
@click.option("--isolate", is_flag=True,
              help="Run CMD in a bubblewrap sandbox whose only way out is the proxy (Linux).")
@click.option("--bind", "binds", multiple=True, metavar="DIR", help="With --isolate: also bind DIR read-write.")
@click.option("--ro-bind", "ro_binds", multiple=True, metavar="DIR", help="With --isolate: also bind DIR read-only.")
@click.option("--egress", type=click.Choice(["all", "providers"]), default="all", show_default=True,
              help="With --isolate: 'providers' refuses connections to hosts of no selected provider.")
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
def run_cmd(client, as_json, providers, isolate, binds, ro_binds, egress, cmd):
    """Run CMD; it sees placeholders (OPENAI_API_KEY=authsome-proxy-managed), never the secrets.

    \b
    authsome run -- python my_agent.py
    authsome run --provider openai --provider github:work -- ./agent.sh
    authsome run --isolate --egress providers -- python my_agent.py
    """
    from authsome.errors import UsageError
    from authsome.run_routes import parse_selection, routes_for

    if not isolate and (binds or ro_binds or egress != "all"):
        raise UsageError("--bind, --ro-bind and --egress need --isolate.")

    selection = parse_selection(list(providers)) if providers else None
    routes = routes_for(client, selection)
    audit = client.audit

    def record(event: dict) -> None:
        audit.record("inject", buffered=True, **event)

    try:
        if isolate:
            from authsome.sandbox import run_isolated

            return run_isolated(list(cmd), routes, binds=list(binds), ro_binds=list(ro_binds), egress=egress,
                                home=client.home, audit=record)
        from authsome.proxy.runner import run_with_proxy

        return run_with_proxy(list(cmd), routes, audit=record)
    finally:
        audit.flush()
