"""The team backend: connection records in an OpenBao / HashiCorp Vault KV v2 engine.

Layout under ``<mount>/<prefix>`` (names never start with ``_``, so the
reserved entries cannot collide with a connection):

    <prefix>/<provider>/<connection>         one KV secret per connection
    <prefix>/<provider>/_default             {"connection": name}
    <prefix>/<provider>/_client/<key>        an OAuth client config (key: "default" or base64url of the base URL)
    <prefix>/<provider>/_lease/<connection>  the refresh lease (see openbao_lease.py)

The KV version is the record's version, and every conditional write uses the
engine's check-and-set, so two machines never overwrite each other silently.
Multi-path operations write in an order that never leaves a dangling default:
a connection before the default that names it; the default moved or removed
before the connection it names. The engine encrypts at rest, so ``sealed``
holds the plaintext in memory only. Internal records (the engine token) stay
in the local vault.
"""

from __future__ import annotations

import secrets as _secrets
import time

from authsome.errors import StoreCorruptError, StoreError
from authsome.vault.openbao_engine import CasMismatch, Engine
from authsome.vault.openbao_records import (
    RECORD_SCHEMA,
    client_key,
    conflict,
    connection_record,
    custom_metadata,
    field,
    plain,
)
from authsome.vault.records import ClientConfigRecord, ConnectionRecord


class OpenBaoStore:
    """Team backend; ``local`` is the home's SqliteStore (internal records: the token)."""

    backend_name = "openbao"

    def __init__(
        self, engine: Engine, local, *, mount: str = "secret", prefix: str = "authsome", auth=None, cache=None
    ) -> None:
        self.engine = engine
        self.local = local
        self.cache = cache  # OfflineCache, or None: no local copies
        self.mount = mount.strip("/")
        self.prefix = prefix.strip("/")
        self.auth = auth  # the token source (openbao_auth.TokenSource) for whoami

    # ---- paths and raw KV operations ------------------------------------------------
    def _path(self, *parts: str) -> str:
        return "/".join([self.prefix, *parts]) if self.prefix else "/".join(parts)

    def _read(self, path: str, what: str) -> tuple[dict, int] | None:
        answer = self.engine.request("GET", f"{self.mount}/data/{path}", what=what)
        if not answer or not isinstance(answer.get("data"), dict) or answer["data"].get("data") is None:
            return None
        body = answer["data"]
        return body["data"], int(body["metadata"]["version"])

    def _current_version(self, path: str, what: str) -> tuple[int, bool]:
        """(current version, whether that version is deleted) from the KV metadata; (0, False) if none."""
        answer = self.engine.request("GET", f"{self.mount}/metadata/{path}", what=what)
        if not answer or not isinstance(answer.get("data"), dict):
            return 0, False
        meta = answer["data"]
        current = int(meta.get("current_version") or 0)
        info = (meta.get("versions") or {}).get(str(current)) or {}
        return current, bool(info.get("deletion_time")) or bool(info.get("destroyed"))

    def _write(self, path: str, data: dict, cas: int | None, what: str) -> int:
        """Write ``data`` (check-and-set on ``cas`` unless None); returns the new version.

        A retried request whose first attempt was applied but not acknowledged
        (failover) meets its own write: recognised by ``write_id``, not a conflict.
        """
        data = dict(data, write_id=_secrets.token_hex(8))
        body: dict = {"data": data}
        if cas is not None:
            body["options"] = {"cas": cas}
        try:
            answer = self.engine.request("POST", f"{self.mount}/data/{path}", what=what, json=body)
        except CasMismatch:
            current = self._read(path, what)
            if current is not None and current[0].get("write_id") == data["write_id"]:
                return current[1]
            raise
        return int(answer["data"]["version"])

    def _list(self, path: str, what: str) -> list[str]:
        answer = self.engine.request("LIST", f"{self.mount}/metadata/{path}/", what=what)
        keys = (answer or {}).get("data", {}).get("keys") or []
        return [k for k in keys if isinstance(k, str)]

    def _delete(self, path: str, what: str) -> None:
        self.engine.request("DELETE", f"{self.mount}/metadata/{path}", what=what)

    # ---- connections ----------------------------------------------------------------
    def _cached_read(self, path: str, what: str) -> tuple[dict, int] | None:
        """A read kept in the offline cache, served from it only on opt-in when the engine is unreachable."""
        if self.cache is None:
            return self._read(path, what)
        try:
            found = self._read(path, what)
        except StoreError as exc:
            if type(exc) is not StoreError or not self.cache.serve:  # refusals and conflicts are never masked
                raise
            hit = self.cache.recall(path, what.removeprefix("read "))
            if hit is None:
                raise
            return hit
        self.cache.remember(path, found)
        return found

    def get_connection(self, provider: str, connection: str) -> ConnectionRecord | None:
        found = self._cached_read(self._path(provider, connection), f"read {provider} ({connection})")
        return None if found is None else connection_record(provider, connection, *found)

    def list_connections(self, provider: str | None = None) -> list[ConnectionRecord]:
        providers = [provider] if provider is not None else self._providers()
        records = []
        for name in sorted(providers):
            for connection in sorted(self._connection_names(name)):
                record = self.get_connection(name, connection)
                if record is not None:
                    records.append(record)
        return records

    def _providers(self) -> list[str]:
        keys = self._list(self.prefix, "list the providers")
        return [k[:-1] for k in keys if k.endswith("/") and not k.startswith("_")]

    def _connection_names(self, provider: str) -> list[str]:
        keys = self._list(self._path(provider), f"list the connections of {provider}")
        return [k for k in keys if not k.endswith("/") and not k.startswith("_")]

    def put_connection(
        self,
        *,
        provider: str,
        connection: str,
        auth_type: str,
        flow: str,
        status: str,
        secrets: dict[str, str],
        expires_at: float | None = None,
        scopes=(),
        metadata: dict | None = None,
        expected_version: int | None = None,
        make_default_if_none: bool = True,
    ) -> int:
        path = self._path(provider, connection)
        what = f"write {provider} ({connection})"
        now = time.time()
        created = now
        cas = expected_version
        if expected_version != 0:
            existing = self._read(path, f"read {provider} ({connection})")
            found = existing[1] if existing else 0
            if expected_version is not None and found != expected_version:
                raise conflict(provider, connection, expected_version, found)
            if existing is not None:
                created = existing[0].get("created_at", now)
            if expected_version is None:
                cas = None
        data = {
            "authsome": RECORD_SCHEMA,
            "kind": "connection",
            "auth_type": auth_type,
            "flow": flow,
            "status": status,
            "created_at": created,
            "updated_at": now,
            "expires_at": expires_at,
            "scopes": list(scopes),
            "metadata": dict(metadata or {}),
            "secrets": dict(secrets),
        }
        version = self._write_with_cas(path, data, cas, provider, connection, what)
        if make_default_if_none and self.get_default(provider) is None:
            try:  # another machine may set one meanwhile: theirs stands
                self._write(
                    self._path(provider, "_default"), {"connection": connection}, 0, f"set the default of {provider}"
                )
            except CasMismatch:
                pass
        return version

    def _write_with_cas(self, path, data, cas, provider, connection, what) -> int:
        version = self._write_connection(path, data, cas, provider, connection, what)
        try:  # derived, informational: the write above stands even if this is refused or the engine goes away
            body = {"custom_metadata": custom_metadata(data)}
            self.engine.request("POST", f"{self.mount}/metadata/{path}", what=what, json=body)
        except StoreError:
            pass
        return version

    def _write_connection(self, path, data, cas, provider, connection, what) -> int:
        try:
            return self._write(path, data, cas, what)
        except CasMismatch:
            found, deleted = self._current_version(path, f"read {provider} ({connection})")
        if cas == 0 and deleted:
            # Only soft-deleted versions there (someone ran 'kv delete'): it does not exist, so write over it.
            try:
                return self._write(path, data, found, what)
            except CasMismatch:
                found, _ = self._current_version(path, f"read {provider} ({connection})")
        raise conflict(provider, connection, cas, found)

    def update_status(self, provider: str, connection: str, status: str, expected_version: int | None = None) -> int:
        path = self._path(provider, connection)
        found = self._read(path, f"read {provider} ({connection})")
        if found is None or (expected_version is not None and found[1] != expected_version):
            raise conflict(provider, connection, expected_version, found[1] if found else 0)
        data, version = found
        data = dict(data, status=status, updated_at=time.time())
        return self._write_with_cas(path, data, version, provider, connection, f"write {provider} ({connection})")

    def delete_connection(self, provider: str, connection: str) -> bool:
        path = self._path(provider, connection)
        existed = self._read(path, f"read {provider} ({connection})") is not None
        if self.get_default(provider) == connection:
            # Move (or drop) the default first, so it never names a missing connection.
            others = [r for r in self.list_connections(provider) if r.connection != connection]
            if others:
                oldest = min(others, key=lambda r: (r.created_at, r.connection))
                self._write(
                    self._path(provider, "_default"),
                    {"connection": oldest.connection},
                    None,
                    f"set the default of {provider}",
                )
            else:
                self._delete(self._path(provider, "_default"), f"clear the default of {provider}")
        if existed:
            self._delete(path, f"delete {provider} ({connection})")
        return existed

    def delete_provider(self, provider: str) -> int:
        self._delete(self._path(provider, "_default"), f"clear the default of {provider}")
        count = 0
        for connection in self._connection_names(provider):
            self._delete(self._path(provider, connection), f"delete {provider} ({connection})")
            count += 1
        for key in self._list(self._path(provider, "_client"), f"list the OAuth clients of {provider}"):
            self._delete(self._path(provider, "_client", key), f"delete an OAuth client of {provider}")
            count += 1
        for key in self._list(self._path(provider, "_lease"), f"list the refresh leases of {provider}"):
            self._delete(self._path(provider, "_lease", key), f"delete a refresh lease of {provider}")
        return count

    # ---- defaults ----------------------------------------------------------------
    def get_default(self, provider: str) -> str | None:
        found = self._cached_read(self._path(provider, "_default"), f"read the default connection of {provider}")
        if found is None:
            return None
        name = found[0].get("connection")
        return name if isinstance(name, str) else None

    def all_defaults(self) -> dict[str, str]:
        defaults = {}
        for provider in self._providers():
            name = self.get_default(provider)
            if name is not None:
                defaults[provider] = name
        return defaults

    def set_default(self, provider: str, connection: str) -> bool:
        if self._read(self._path(provider, connection), f"read {provider} ({connection})") is None:
            return False
        self._write(
            self._path(provider, "_default"), {"connection": connection}, None, f"set the default of {provider}"
        )
        return True

    # ---- client configs ----------------------------------------------------------------
    def get_client_config(self, provider: str, base_url: str = "") -> ClientConfigRecord | None:
        found = self._read(
            self._path(provider, "_client", client_key(base_url)), f"read the OAuth client of {provider}"
        )
        if found is None:
            return None
        data, version = found
        return ClientConfigRecord(
            provider=provider,
            base_url=base_url,
            client_id=field(data, "client_id", str, f"the OAuth client of {provider}"),
            metadata=field(data, "metadata", dict, f"the OAuth client of {provider}"),
            sealed=field(data, "secrets", dict, f"the OAuth client of {provider}"),
            version=version,
            opener=plain,
        )

    def list_client_configs(self, provider: str) -> list[ClientConfigRecord]:
        records = []
        for key in self._list(self._path(provider, "_client"), f"list the OAuth clients of {provider}"):
            found = self._read(self._path(provider, "_client", key), f"read the OAuth client of {provider}")
            if found is not None:
                record = self.get_client_config(provider, found[0].get("base_url", ""))
                if record is not None:
                    records.append(record)
        return records

    def all_client_configs(self) -> list[ClientConfigRecord]:
        return [c for p in self._providers() for c in self.list_client_configs(p)]

    def put_client_config(
        self, provider: str, base_url: str, client_id: str, secrets: dict[str, str], metadata: dict | None = None
    ) -> int:
        data = {
            "authsome": RECORD_SCHEMA,
            "kind": "client",
            "base_url": base_url,
            "client_id": client_id,
            "metadata": dict(metadata or {}),
            "secrets": dict(secrets),
        }
        path = self._path(provider, "_client", client_key(base_url))
        return self._write(path, data, None, f"write the OAuth client of {provider}")

    # ---- refresh lease (single-flight OAuth refresh across machines) -----------------
    def refresh_lease(self, provider: str, connection: str, **options):
        from authsome.vault.openbao_lease import engine_lease

        return engine_lease(self, provider, connection, **options)

    # ---- internal records: local vault ------------------------------------------------
    def get_internal(self, name: str) -> dict[str, str] | None:
        return self.local.get_internal(name)

    def put_internal(self, name: str, secrets: dict[str, str]) -> None:
        self.local.put_internal(name, secrets)

    def delete_internal(self, name: str) -> None:
        self.local.delete_internal(name)

    # ---- integrity and description ----------------------------------------------------
    def check(self, deep: bool = True) -> list[str]:
        problems = []
        for provider in self._providers():
            names = set()
            for connection in self._connection_names(provider):
                try:
                    if self.get_connection(provider, connection) is not None:
                        names.add(connection)
                except StoreCorruptError as exc:
                    problems.append(exc.message)
            default = self.get_default(provider)
            if default is not None and default not in names:
                problems.append(f"The default of {provider} points at a missing connection ({default}).")
        return problems

    def describe(self) -> dict:
        """What ``whoami`` shows: engine, path, token source and policies (never the token)."""
        info = {"engine": self.engine.url, "engine_urls": list(self.engine.urls), "path": self._path_label()}
        if self.auth is not None:
            info.update(self.auth.describe(self.engine))
        return info

    def _path_label(self) -> str:
        return f"{self.mount}/{self.prefix}" if self.prefix else self.mount

    def unlock(self) -> None:
        """Nothing to unlock: the engine authorises every call by its token."""

    def close(self) -> None:
        self.engine.close()
        self.local.close()
