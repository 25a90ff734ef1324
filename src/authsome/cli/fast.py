"""Fast paths for the hottest read commands: ``get P --field <metadata>`` and ``list``.

Agents call these in loops, so they skip click (about 45 ms to import here)
and everything else heavy. They handle only the plain success case of the
exact forms below; anything else (help, unknown flags, a secret field, a
custom provider file, any error) returns None and the full click CLI runs
instead, which prints the proper output or error. Reads are side-effect
free, so running them twice on fallback is safe. ``tests/cli/test_fast_path.py``
checks that both paths print the same thing.
"""

from __future__ import annotations

import os
import sys

from authsome.connection_info import METADATA_FIELDS, field_text, metadata, metadata_field, valid_name


def run(argv: list[str]) -> int | None:
    try:
        if not _is_local_home(_home()):
            return None  # a team home's connections live in the engine: the full path knows how to reach it
        if argv[0] == "list":
            return _list(argv[1:])
        if argv[0] == "get":
            return _get(argv[1:])
    except Exception:  # noqa: BLE001 - any surprise: let the full CLI handle (and report) it
        return None
    return None


def _home() -> str:
    return os.path.expanduser(os.environ.get("AUTHSOME_HOME") or "~/.authsome")


def _is_local_home(home: str) -> bool:
    try:
        with open(os.path.join(home, "config.json"), "rb") as f:
            # A byte search instead of json: the writer (home.save_config) always emits this exact form.
            return b'"backend": "local"' in f.read()
    except FileNotFoundError:
        return True  # no home yet: nothing is stored locally or anywhere else
    except OSError:
        return False


def _store(home: str):
    from authsome.vault.sqlite_store import SqliteStore

    return SqliteStore(os.path.join(home, "vault.db"), key_loader=None)


def _list(args: list[str]) -> int | None:
    if any(a not in ("--json",) for a in args):
        return None
    store = _store(_home())
    defaults = store.all_defaults()
    # The table shows no scopes, so only --json decodes them.
    if "--json" in args:
        fields = METADATA_FIELDS
    else:
        fields = ("provider", "connection", "status", "auth_type", "is_default")
    rows = [metadata(r, defaults.get(r.provider) == r.connection, fields) for r in store.list_connections()]
    store.close()
    if "--json" in args:
        from authsome.cli.output import emit_json

        emit_json(rows)
    else:
        from authsome.cli.render import render_list

        sys.stdout.write(render_list(rows))
    return 0


def _get(args: list[str]) -> int | None:
    provider, connection, field, as_json = None, None, None, False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("--connection", "-c", "--field", "-f") and i + 1 < len(args):
            if arg in ("--connection", "-c"):
                connection = args[i + 1]
            else:
                field = args[i + 1]
            i += 2
            continue
        if arg == "--json":
            as_json = True
        elif arg.startswith("-") or provider is not None:
            return None
        else:
            provider = arg
        i += 1
    if provider is None or field not in METADATA_FIELDS or not valid_name(provider):
        return None
    if connection is not None and not valid_name(connection):
        return None
    home = _home()
    # Only bundled providers: a custom file may override or be invalid, which the full path reports.
    bundled = os.path.join(os.path.dirname(os.path.dirname(__file__)), "providers", "bundled", provider + ".json")
    if os.path.exists(os.path.join(home, "providers", provider + ".json")) or not os.path.exists(bundled):
        return None
    store = _store(home)
    default = store.get_default(provider)
    name = connection or default
    record = store.get_connection(provider, name) if name else None
    store.close()
    if record is None:
        return None
    value = field_text(metadata_field(record, field, default == record.connection))
    if as_json:
        from authsome.cli.output import emit_json

        emit_json({"field": field, "value": value})
    else:
        sys.stdout.write(value + "\n")
    return 0
