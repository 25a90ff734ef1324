"""The library API: ``from authsome import Authsome``.

Every CLI command is one call here, so anything an agent can do from the CLI
a Python program can do too. Reads of metadata never load the key, never
touch the network and never import the OAuth stack.
"""

from __future__ import annotations

import os

from authsome.connection_info import AVAILABLE, METADATA_FIELDS, field_text, valid_name
from authsome.connection_info import metadata as _metadata
from authsome.errors import (
    ConnectionNotFoundError,
    NotLoggedInError,
    UsageError,
)
from authsome.home import Home

REDACTED = "[redacted]"


class Authsome:
    """A handle on one authsome home (``$AUTHSOME_HOME`` or ``~/.authsome`` by default).

    ``notice`` receives one-line messages meant for a person (e.g. which key
    source a new home chose); the CLI sends them to stderr.
    """

    def __init__(self, home: str | os.PathLike | None = None, *, notice=None, interactive: bool = False) -> None:
        self.home = Home(home)
        self._notice = notice
        self._interactive = interactive
        self._registry = None
        self._store = None
        self._audit = None
        self._config = None

    # ---- lazily built parts -------------------------------------------------------
    @property
    def registry(self):
        if self._registry is None:
            from authsome.providers.registry import ProviderRegistry

            self._registry = ProviderRegistry(self.home.providers_dir)
        return self._registry

    @property
    def config(self) -> dict | None:
        if self._config is None:
            self._config = self.home.load_config()
        return self._config

    @property
    def store(self):
        if self._store is None:
            from authsome.vault.backend import open_store
            from authsome.vault.local import ask_passphrase_on_terminal

            ask = ask_passphrase_on_terminal if self._interactive else None
            self._store = open_store(self.home, self.config, ask_passphrase=ask, notice=self._notice)
        return self._store

    @property
    def audit(self):
        if self._audit is None:
            from authsome.audit import AuditLog

            self._audit = AuditLog(self.home.audit_path)
        return self._audit

    def ensure_initialized(self, key_source: str | None = None) -> dict:
        """Initialise the home on first write (or ``init``); says once which key source it chose."""
        if self.config is not None and key_source is None:
            return self.config
        from authsome.vault.local import ask_passphrase_on_terminal, initialize_home

        ask = ask_passphrase_on_terminal if self._interactive else None
        self._config = initialize_home(self.home, key_source=key_source, notice=self._notice, ask_passphrase=ask)
        if self._store is not None:
            self._store.close()
            self._store = None
        return self._config

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._audit is not None:
            self._audit.flush()

    # ---- resolving provider + connection ----------------------------------------------
    def provider(self, name: str):
        return self.registry.get(name)

    def resolve(self, provider_name: str, connection: str | None = None):
        """(Provider, ConnectionRecord) for a provider and an optional connection name.

        No ``--connection`` means the provider's default connection: exit 5 when
        the provider has none; a named connection that does not exist is exit 3.
        """
        provider = self.provider(provider_name)
        store = self.store
        if connection is None:
            name = store.get_default(provider.name)
            record = store.get_connection(provider.name, name) if name else None
            if record is None:
                raise NotLoggedInError(
                    f"Not logged in to {provider.name}: it has no connection.",
                    hint=f"Run 'authsome login {provider.name}'.",
                )
            return provider, record
        check_connection_name(connection)
        record = store.get_connection(provider.name, connection)
        if record is None:
            others = [r.connection for r in store.list_connections(provider.name)]
            hint = (
                f"Known connections of {provider.name}: {', '.join(others)}."
                if others
                else f"Run 'authsome login {provider.name} --connection {connection}'."
            )
            raise ConnectionNotFoundError(f"{provider.name} has no connection named '{connection}'.", hint=hint)
        return provider, record

    # ---- metadata reads (no key, no network) ---------------------------------------------
    def list_connections(self, include_available: bool = False) -> list[dict]:
        store = self.store
        defaults = store.all_defaults()
        rows = [_metadata(r, defaults.get(r.provider) == r.connection) for r in store.list_connections()]
        if include_available:
            connected = {r["provider"] for r in rows}
            for name in self.registry.names():
                if name not in connected:
                    rows.append(
                        {
                            "provider": name,
                            "connection": None,
                            "status": AVAILABLE,
                            "auth_type": self.registry.get(name).auth_type,
                            "is_default": False,
                            "created_at": None,
                            "updated_at": None,
                            "expires_at": None,
                            "scopes": [],
                        }
                    )
            rows.sort(key=lambda r: (r["provider"], r["connection"] or ""))
        return rows

    def get_metadata(self, provider: str, connection: str | None = None) -> dict:
        """Metadata of a connection; credential fields appear as ``[redacted]`` (non-secret ones as-is)."""
        prov, record = self.resolve(provider, connection)
        info = _metadata(record, self.store.get_default(prov.name) == record.connection)
        for name in record.secret_fields():
            info[name] = REDACTED if _is_secret_field(prov, name) else record.secret(name)
        return info

    def get_field(self, provider: str, field: str, connection: str | None = None, *, show_secret: bool = False) -> str:
        """One field of a connection, as ``get --field`` prints it."""
        prov, record = self.resolve(provider, connection)
        if field in METADATA_FIELDS:
            return field_text(_metadata(record, self.store.get_default(prov.name) == record.connection)[field])
        if field not in record.sealed:
            # Field names are not secret, but a damaged or renamed one must read as damage (exit 7),
            # not as "no such field": opening every sealed field authenticates them all.
            record.secrets()
            known = ", ".join(list(METADATA_FIELDS) + record.secret_fields())
            raise UsageError(f"{prov.name} ({record.connection}) has no field '{field}'.", hint=f"Fields: {known}.")
        secret = _is_secret_field(prov, field)
        if secret and not show_secret:
            raise UsageError(
                f"'{field}' of {prov.name} ({record.connection}) is a secret.",
                hint="Add --show-secret to print it, or prefer 'authsome run -- <command>'.",
            )
        if not secret:
            return record.secret(field)
        value = self.credential_secrets(prov.name, record.connection, _resolved=(prov, record))[field]
        self.audit.record("show_secret", provider=prov.name, connection=record.connection, field=field, outcome="ok")
        return value

    # ---- secret reads ------------------------------------------------------------------
    def credential_secrets(self, provider: str, connection: str | None = None, *, _resolved=None) -> dict[str, str]:
        """All credential fields of a connection, refreshing an OAuth token near expiry first."""
        prov, record = _resolved or self.resolve(provider, connection)
        if record.auth_type == "oauth2":
            from authsome.flows.refresh import refresh_if_needed

            record = refresh_if_needed(self, prov, record)
        return record.secrets()

    def get_secret(self, provider: str, connection: str | None = None) -> str:
        """The main secret: the API key (single-field providers) or the OAuth access token."""
        prov, record = self.resolve(provider, connection)
        secrets = self.credential_secrets(prov.name, record.connection, _resolved=(prov, record))
        for name in ("access_token", "api_key"):
            if name in secrets:
                return secrets[name]
        raise UsageError(f"{prov.name} has a multi-part credential; use credential_secrets() for its fields.")

    def auth_headers(self, provider: str, connection: str | None = None) -> dict[str, str]:
        """Headers that authenticate a request to the provider (as the proxy would inject them)."""
        prov, record = self.resolve(provider, connection)
        injection = prov.injection(self.credential_secrets(prov.name, record.connection, _resolved=(prov, record)))
        return dict(injection.headers)

    def export_env(self, provider: str, connection: str | None = None, *, fmt: str = "env") -> dict[str, str]:
        """Environment variables for a connection: API keys and access tokens only, never refresh tokens.

        Every export is audited (``fmt`` says in which form it was printed)."""
        prov, record = self.resolve(provider, connection)
        secrets = self.credential_secrets(prov.name, record.connection, _resolved=(prov, record))
        mapping = prov.export_env()
        result = {
            var: secrets[field] for field, var in mapping.items() if field in secrets and field != "refresh_token"
        }
        self.audit.record("export", provider=prov.name, connection=record.connection, format=fmt, outcome="ok")
        return result

    # ---- writes ---------------------------------------------------------------------
    def login(self, provider: str, connection: str | None = None, **options) -> dict:
        """Log in (see ``authsome.login.login`` for the options). Returns a result dict."""
        from authsome.login import login

        return login(self, provider, connection, **options)

    def logout(self, provider: str, connection: str | None = None) -> dict:
        prov, record = self.resolve(provider, connection)
        self.store.unlock()  # only someone who can open the vault may change it
        self.store.delete_connection(prov.name, record.connection)
        self.audit.record("logout", provider=prov.name, connection=record.connection, outcome="ok")
        return {"provider": prov.name, "connection": record.connection, "removed": True}

    def remove(self, provider: str) -> dict:
        prov = self.provider(provider)
        connections = [r.connection for r in self.store.list_connections(prov.name)]
        if not connections and self.store.get_client_config(prov.name, "") is None and self.config is None:
            raise NotLoggedInError(f"Nothing to remove: {prov.name} has no local state.")
        self.store.unlock()  # only someone who can open the vault may change it
        removed = self.store.delete_provider(prov.name)
        if not removed:
            raise NotLoggedInError(f"Nothing to remove: {prov.name} has no local state.")
        self.audit.record("remove", provider=prov.name, outcome="ok", detail=f"{len(connections)} connection(s)")
        return {"provider": prov.name, "connections": connections, "removed": True}

    def revoke(self, provider: str, connection: str | None = None) -> dict:
        from authsome.revocation import revoke

        return revoke(self, provider, connection)

    def set_default(self, provider: str, connection: str) -> dict:
        prov = self.provider(provider)
        check_connection_name(connection)
        missing = ConnectionNotFoundError(
            f"{prov.name} has no connection named '{connection}'.",
            hint=f"Run 'authsome list' to see the connections of {prov.name}.",
        )
        if self.store.get_connection(prov.name, connection) is None:
            raise missing
        self.store.unlock()  # only someone who can open the vault may change it
        if not self.store.set_default(prov.name, connection):
            raise missing
        self.audit.record("set_default", provider=prov.name, connection=connection, outcome="ok")
        return {"provider": prov.name, "default": connection}

    def register(self, path: str | os.PathLike) -> dict:
        self.ensure_initialized()
        prov = self.registry.register(path)
        self.audit.record("register", provider=prov.name, outcome="ok")
        return {"provider": prov.name, "display_name": prov.display_name, "path": str(prov.path)}

    def inspect(self, provider: str) -> dict:
        prov = self.provider(provider)
        info = prov.to_dict()
        info["source"] = prov.source
        info["connections"] = [r.connection for r in self.store.list_connections(prov.name)]
        info["default_connection"] = self.store.get_default(prov.name)
        return info

    def events(self, limit: int | None = None) -> list[dict]:
        return self.audit.read(limit)

    def whoami(self) -> dict:
        from authsome.maintenance import whoami

        return whoami(self)

    def doctor(self) -> list[dict]:
        from authsome.maintenance import doctor

        return doctor(self)


def check_connection_name(name: str) -> None:
    if not valid_name(name):
        raise UsageError(
            f"'{name}' is not a valid connection name.",
            hint="Use lower-case letters, digits, '.', '_' or '-' (starting with a letter or digit, no '..').",
        )


def _is_secret_field(provider, name: str) -> bool:
    if name in ("access_token", "refresh_token", "id_token", "api_key", "client_secret"):
        return True
    for field in provider.fields:
        if field.name == name:
            return field.secret
    return True  # unknown to the definition: treat as secret
