"""The click application: every command parses, calls one library function, renders."""

from __future__ import annotations

import functools
import os
import sys

import click

from authsome.cli import output
from authsome.errors import AuthsomeError, CancelledError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _client(interactive: bool = True):
    from authsome.client import Authsome

    return Authsome(notice=output.message, interactive=interactive)


def command(name: str, **kwargs):
    """A command with ``--json`` whose AuthsomeErrors become documented exit codes."""

    settings = {**CONTEXT, **kwargs.pop("context_settings", {})}

    def decorate(fn):
        @cli.command(name, context_settings=settings, **kwargs)
        @click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
        @functools.wraps(fn)
        def wrapper(as_json: bool, **params):
            client = _client()
            try:
                code = fn(client, as_json, **params)
            except AuthsomeError as err:
                output.print_error(err, as_json)
                code = err.exit_code
            except KeyboardInterrupt:
                output.print_error(CancelledError("Cancelled."), as_json)
                code = CancelledError.exit_code
            finally:
                client.close()
            sys.exit(code or 0)

        return wrapper

    return decorate


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="authsome", message="authsome %(version)s")
def cli() -> None:
    """authsome: a local credential broker for AI agents.

    Log in once (keys are kept encrypted in a local vault), then let agents use
    the credentials: best through 'authsome run -- CMD', which injects them at a
    local proxy so the agent never holds a secret.
    """


def offline_option(fn):
    """Team backend only: serve a read from the encrypted local copy when the engine is unreachable."""

    def enable(ctx, param, value):
        if value:
            os.environ["AUTHSOME_OFFLINE_OK"] = "1"  # read by the team store when it opens; never passed to run
        return value

    return click.option(
        "--offline-ok",
        is_flag=True,
        expose_value=False,
        callback=enable,
        is_eager=True,
        help="Team vault: if the engine is unreachable, use the last copy read (labelled).",
    )(fn)


def connection_option(fn):
    return click.option(
        "--connection", "-c", metavar="NAME", help="Connection name (default: the provider's default)."
    )(fn)


# ---- setup -----------------------------------------------------------------------------
@command("init")
@click.option(
    "--key-source",
    type=click.Choice(["keyring", "file", "passphrase"]),
    help="Where the vault key lives (default: OS keyring if a real one works, else a key file).",
)
@click.option("--backend", type=click.Choice(["local", "openbao"]), help="Where credentials live (default: local).")
@click.option("--url", "urls", multiple=True, metavar="URL", help="Team engine address (repeatable: tried in order).")
@click.option("--mount", metavar="M", help="KV v2 mount of the team engine (default: secret).")
@click.option("--prefix", metavar="P", help="Path prefix under the mount (default: authsome).")
@click.option("--auth", type=click.Choice(["token", "approle"]), help="How to log in to the team engine.")
@click.option("--role-id", metavar="ID", help="AppRole role id (public; the secret id is never an argument).")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the engine token or secret id from standard input.")
def init_cmd(client, as_json, key_source, backend, urls, mount, prefix, auth, role_id, from_stdin):
    """Create the authsome home and fix its key source (and, with --backend openbao, its team vault)."""
    if backend or urls or mount or prefix or auth or role_id or from_stdin:
        from authsome.cli.team_cmds import init_team

        return init_team(client, as_json, key_source, backend, urls, mount, prefix, auth, role_id, from_stdin)
    existed = client.config is not None
    config = client.ensure_initialized(key_source)
    result = {"home": str(client.home.path), "key_source": config["key_source"], "created": not existed}
    if as_json:
        output.emit_json(result)
    elif existed:
        output.message(f"authsome home {client.home.path} already initialised (key source: {config['key_source']}).")


@command("whoami")
def whoami_cmd(client, as_json):
    """Show the home, backend and key source in use."""
    info = client.whoami()
    if as_json:
        output.emit_json(info)
    else:
        for key, value in info.items():
            click.echo(f"{key}: {value}")


@command("doctor")
def doctor_cmd(client, as_json):
    """Check permissions, the vault's integrity, custom provider files and whether run --isolate works."""
    from authsome.maintenance import isolation_check

    checks = client.doctor()
    ok = all(c["ok"] for c in checks)
    checks.append(isolation_check())  # informational: a machine without user namespaces is still healthy
    if as_json:
        output.emit_json({"ok": ok, "checks": checks})
    else:
        for c in checks:
            mark = "ok  " if c["ok"] else ("info" if c.get("informational") else "FAIL")
            click.echo(f"{mark} {c['check']}" + ("" if c["ok"] else f": {c['detail']}"))
    return 0 if ok else 7


# ---- providers -----------------------------------------------------------------------------
@command("register")
@click.argument("file", type=click.Path(dir_okay=False))
def register_cmd(client, as_json, file):
    """Add a custom provider from a JSON definition file."""
    result = client.register(file)
    if as_json:
        output.emit_json(result)
    else:
        output.success(f"Registered provider {result['provider']} ({result['display_name']}).")


@command("inspect")
@click.argument("provider")
def inspect_cmd(client, as_json, provider):
    """Show a provider's definition and its connections."""
    import json

    info = client.inspect(provider)
    if as_json:
        output.emit_json(info)
    else:
        click.echo(json.dumps(info, indent=2))


# ---- reads -----------------------------------------------------------------------------
@command("list")
@click.option("--all", "show_all", is_flag=True, help="Also list providers with no connection (available).")
def list_cmd(client, as_json, show_all):
    """List connections (* marks each provider's default)."""
    from authsome.cli.render import render_list

    rows = client.list_connections(include_available=show_all)
    if as_json:
        output.emit_json(rows)
    else:
        sys.stdout.write(render_list(rows))


@command("get")
@click.argument("provider")
@connection_option
@offline_option
@click.option("--field", "-f", metavar="FIELD", help="Print one field's bare value.")
@click.option("--show-secret", is_flag=True, help="Allow printing a secret field (with --field).")
def get_cmd(client, as_json, provider, connection, field, show_secret):
    """Show a connection's metadata (secrets redacted) or one field."""
    from authsome.errors import UsageError

    if show_secret and not field:
        raise UsageError(
            "--show-secret needs --field.", hint=f"e.g. authsome get {provider} --field api_key --show-secret"
        )
    if field:
        value = client.get_field(provider, field, connection, show_secret=show_secret)
        if as_json:
            output.emit_json({"field": field, "value": value})
        else:
            click.echo(value)
        return
    info = client.get_metadata(provider, connection)
    if as_json:
        output.emit_json(info)
    else:
        from authsome.cli.render import render_fields

        sys.stdout.write(render_fields(info))


@command("export")
@click.argument("provider")
@connection_option
@offline_option
@click.option("--format", "fmt", type=click.Choice(["env", "shell", "json"]), default="env", show_default=True)
def export_cmd(client, as_json, provider, connection, fmt):
    """Print the credential as environment variables (keys/access tokens only)."""
    from authsome.cli.export_format import render

    variables = client.export_env(provider, connection, fmt="json" if as_json else fmt)
    if as_json:
        output.emit_json(variables)
    else:
        sys.stdout.write(render(variables, fmt))


@command("log")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=50, show_default=True)
def log_cmd(client, as_json, limit):
    """Show the audit log (most recent last)."""
    from authsome.cli.render import render_events

    events = client.events(limit)
    if as_json:
        output.emit_json(events)
    else:
        sys.stdout.write(render_events(events))


# ---- writes -----------------------------------------------------------------------------
@command("login")
@click.argument("provider")
@connection_option
@click.option("--force", is_flag=True, help="Replace an existing connection (rotate the key).")
@click.option("--from-env", is_flag=True, help="Read the key from the provider's environment variable.")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the key from standard input (piped).")
@click.option("--no-browser", is_flag=True, help="Ask on the terminal (masked) instead of the browser form.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=300,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the browser form, OAuth callback or device approval.",
)
@click.option(
    "--flow",
    type=click.Choice(["api_key", "pkce", "device_code", "dcr_pkce"]),
    help="Authentication flow (default: the provider's).",
)
@click.option("--scopes", metavar="A,B", help="OAuth scopes, comma-separated.")
@click.option("--base-url", metavar="URL", help="Base URL for self-hosted providers (GitLab, GitHub Enterprise).")
@click.option("--client-id", metavar="ID", help="OAuth client id (public; the client secret is never an argument).")
def login_cmd(
    client,
    as_json,
    provider,
    connection,
    force,
    from_env,
    from_stdin,
    no_browser,
    timeout,
    flow,
    scopes,
    base_url,
    client_id,
):
    """Log in to a provider. Keys are never accepted as arguments."""
    from authsome.errors import UsageError

    if sum([from_env, from_stdin, no_browser]) > 1:
        raise UsageError("Use at most one of --from-env, --stdin and --no-browser.")
    source = "env" if from_env else "stdin" if from_stdin else "terminal" if no_browser else "auto"
    result = client.login(
        provider,
        connection,
        force=force,
        source=source,
        timeout=timeout,
        flow=flow,
        scopes=[s for s in scopes.split(",") if s] if scopes else None,
        base_url=base_url,
        client_id=client_id,
        announce=output.message,
    )
    if as_json:
        output.emit_json(result)
    elif result["changed"]:
        output.success(f"Successfully logged in to {result['provider']} ({result['connection']}).")
    else:
        output.message(result["message"])
        output.message(f"Hint: {result['hint']}")


@command("logout")
@click.argument("provider")
@connection_option
def logout_cmd(client, as_json, provider, connection):
    """Remove one connection's local credential (the provider is not contacted)."""
    result = client.logout(provider, connection)
    if as_json:
        output.emit_json(result)
    else:
        output.success(f"Logged out of {result['provider']} ({result['connection']}).")


@command("remove")
@click.argument("provider")
def remove_cmd(client, as_json, provider):
    """Delete all local state of a provider: connections, client configs, default."""
    result = client.remove(provider)
    if as_json:
        output.emit_json(result)
    else:
        output.success(f"Removed {result['provider']} ({len(result['connections'])} connection(s)).")


@command("revoke")
@click.argument("provider")
@connection_option
def revoke_cmd(client, as_json, provider, connection):
    """Revoke at the provider (OAuth), then delete local state. API keys: same as remove."""
    result = client.revoke(provider, connection)
    if as_json:
        output.emit_json(result)
    else:
        output.success(f"Revoked {result['provider']} ({', '.join(result['connections'])}).")


@command("set-default")
@click.argument("provider")
@click.argument("connection")
def set_default_cmd(client, as_json, provider, connection):
    """Make CONNECTION the provider's default connection."""
    result = client.set_default(provider, connection)
    if as_json:
        output.emit_json(result)
    else:
        output.success(f"{result['provider']} now uses {result['default']} by default.")


def main(argv: list[str] | None = None) -> int:
    """Run the click app; click's own usage errors keep exit 2 and honour --json."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        cli.main(args=args, prog_name="authsome", standalone_mode=False)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    except click.exceptions.Abort:
        output.print_error(CancelledError("Cancelled."), "--json" in args)
        return CancelledError.exit_code
    except click.ClickException as exc:
        from authsome.errors import UsageError

        if "--json" in args:
            output.print_error(UsageError(exc.format_message()), True)
        else:
            exc.show()
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback, no message text
        if os.environ.get("AUTHSOME_DEBUG") == "1":
            raise
        return output.print_bug(exc, "--json" in args)
    return 0


# Commands that live in their own modules register themselves on import ('run', 'migrate').
from authsome.cli import run_cmd, team_cmds  # noqa: E402, F401
