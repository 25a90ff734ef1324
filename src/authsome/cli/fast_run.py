"""Fast path for ``authsome run [--provider NAME[:CONN]]... [--] CMD...``.

``run`` wraps every command an agent starts, so its own start-up is paid on
each one. This path skips click (tens of milliseconds to import) and does
exactly what ``cli/run_cmd.py`` does without ``--isolate``. Anything else
(``--isolate``, ``--json``, ``--help``, ``--offline-ok``, ``-pNAME``, a missing
command, ...) returns None before anything has happened, and the click
command handles it. ``tests/cli/test_fast_run.py`` checks that both paths
give the same exit codes and messages.
"""

from __future__ import annotations

import os
import sys

_PROVIDER_FLAGS = ("--provider", "-p")


def parse(args: list[str]) -> tuple[list[str], list[str]] | None:
    """``(provider specs, command)`` for the plain form of ``run``'s arguments, else None.

    As in the click command (``allow_interspersed_args=False``), options end at
    ``--`` or at the first argument that is not an option: the rest is the command.
    """
    providers: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if arg in _PROVIDER_FLAGS:
            if i + 1 >= len(args) or args[i + 1].startswith("-"):
                return None  # an odd value (or none): click decides what it means
            providers.append(args[i + 1])
            i += 2
            continue
        if arg.startswith("--provider="):
            providers.append(arg[len("--provider=") :])
            i += 1
            continue
        if arg.startswith("-"):
            return None  # any other option, known or not: the click command's business
        break
    command = args[i:]
    return (providers, command) if command else None


def run(argv: list[str]) -> int | None:
    """Handle ``argv`` (``["run", ...]``) and end the process; return None (having done nothing) if unsure."""
    parsed = parse(argv[1:])
    if parsed is None:
        return None
    providers, command = parsed
    code = _run(providers, command)
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken stream: nothing more can be said on it
    # With join_proxy=False the proxy's daemon threads may still be finishing a request. A normal
    # interpreter exit would tear modules (and OpenSSL) down under them, which can crash or hang;
    # os._exit ends the process at once, after everything that matters (audit, std streams) is flushed.
    os._exit(code)


def _run(providers: list[str], command: list[str]) -> int:
    """The body of the click ``run`` command (non-isolate), with the click wrapper's error handling."""
    from authsome.cli import output
    from authsome.client import Authsome
    from authsome.errors import AuthsomeError, CancelledError

    client = Authsome(notice=output.message, interactive=True)
    audit = None
    try:
        from authsome.run_routes import parse_selection, routes_for

        selection = parse_selection(providers) if providers else None
        routes = routes_for(client, selection)
        audit = client.audit

        def record(event: dict) -> None:
            audit.record("inject", buffered=True, **event)

        from authsome.proxy.runner import run_with_proxy

        return run_with_proxy(command, routes, audit=record, join_proxy=False) or 0
    except AuthsomeError as err:
        output.print_error(err, False)
        return err.exit_code
    except KeyboardInterrupt:
        output.print_error(CancelledError("Cancelled."), False)
        return CancelledError.exit_code
    except Exception as exc:  # noqa: BLE001 - as the click app's last line of defence: no traceback, no message
        if os.environ.get("AUTHSOME_DEBUG") == "1":
            import traceback

            traceback.print_exc()
            return 1
        return output.print_bug(exc, False)
    finally:
        # The store is left open: the proxy's threads may still use it, and os._exit follows
        # (SQLite keeps the vault consistent whatever state a process ends in).
        if audit is not None:
            audit.flush()
