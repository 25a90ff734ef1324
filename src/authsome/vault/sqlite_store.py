"""The local vault: one SQLite database (WAL, synchronous=FULL), secrets sealed per field.

Every write is one ``BEGIN IMMEDIATE`` transaction, so concurrent writers
serialise; a busy database is retried with a bounded wait and then reported
as ``StoreLockedError`` (exit 7), never as "database is locked".
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time

from authsome.errors import ConflictError, StoreCorruptError, StoreError, StoreLockedError
from authsome.vault.records import ClientConfigRecord, ConnectionRecord

SCHEMA_VERSION = 1
LOCK_WAIT_SECONDS = 15.0
# Test-only, off by default: a descriptor that gets one byte at each write transaction's begin ("B")
# and commit ("C"), so the crash tests know where a kill -9 landed. It never carries any data.
_TRACE_FD = int(_fd) if (_fd := os.environ.get("AUTHSOME_TEST_TRACE_FD", "")).isdigit() else -1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS connections (
  provider TEXT NOT NULL, connection TEXT NOT NULL,
  auth_type TEXT NOT NULL, flow TEXT NOT NULL, status TEXT NOT NULL,
  created_at REAL NOT NULL, updated_at REAL NOT NULL, expires_at REAL,
  scopes TEXT NOT NULL, metadata TEXT NOT NULL, secrets TEXT NOT NULL,
  version INTEGER NOT NULL,
  PRIMARY KEY (provider, connection)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS defaults (provider TEXT PRIMARY KEY, connection TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS client_configs (
  provider TEXT NOT NULL, base_url TEXT NOT NULL, client_id TEXT NOT NULL,
  metadata TEXT NOT NULL, secrets TEXT NOT NULL, version INTEGER NOT NULL, updated_at REAL NOT NULL,
  PRIMARY KEY (provider, base_url)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS internal (
  name TEXT PRIMARY KEY, secrets TEXT NOT NULL, version INTEGER NOT NULL, updated_at REAL NOT NULL
) WITHOUT ROWID;
"""

_CONN_COLUMNS = (
    "provider, connection, auth_type, flow, status, created_at, updated_at, expires_at, "
    "scopes, metadata, secrets, version"
)


class SqliteStore:
    """Local backend. ``key_loader()`` returns the 32-byte data key; it is called lazily."""

    backend_name = "local"

    def __init__(self, db_path, key_loader) -> None:
        self.db_path = os.fspath(db_path)
        self._key_loader = key_loader
        self._key: bytes | None = None
        self._db: sqlite3.Connection | None = None
        # `authsome run` looks credentials up from the proxy's worker threads: one connection, used in turn.
        self._lock = threading.RLock()

    # ---- connection handling -------------------------------------------------
    def _connect(self, create: bool) -> sqlite3.Connection | None:
        if self._db is not None:
            return self._db
        if not os.path.exists(self.db_path):
            if not create:
                return None
            # SQLite gives -wal/-shm the database file's mode, so creating it 0600 covers all three.
            os.close(os.open(self.db_path, os.O_WRONLY | os.O_CREAT, 0o600))
        try:
            db = sqlite3.connect(self.db_path, timeout=LOCK_WAIT_SECONDS, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA synchronous=FULL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0 and create:
                self._create_schema(db)
            elif version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.db_path} was written by a newer authsome (schema {version}).",
                    hint="Upgrade authsome to use this vault.",
                )
        except sqlite3.DatabaseError as exc:
            raise _translate(exc, self.db_path) from None
        self._db = db
        return db

    def _create_schema(self, db: sqlite3.Connection) -> None:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("PRAGMA user_version").fetchone()[0] == 0:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _read(self, sql: str, args=()) -> list[tuple]:
        with self._lock:
            return self._read_locked(sql, args)

    def _read_locked(self, sql: str, args) -> list[tuple]:
        db = self._connect(create=False)
        if db is None:
            return []
        try:
            if db.execute("PRAGMA user_version").fetchone()[0] == 0:
                return []
            return db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as exc:
            raise _translate(exc, self.db_path) from None

    def _write(self, fn):
        """Run ``fn(db)`` in one IMMEDIATE transaction, retrying a busy database for a bounded time."""
        with self._lock:
            return self._write_locked(fn)

    def _write_locked(self, fn):
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        delay = 0.01
        while True:
            db = self._connect(create=True)
            try:
                db.execute("BEGIN IMMEDIATE")
                _trace(b"B")
                try:
                    result = fn(db)
                    db.execute("COMMIT")
                    _trace(b"C")
                    return result
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:
                if _is_busy(exc) and time.monotonic() < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.2)
                    continue
                raise _translate(exc, self.db_path) from None
            except sqlite3.DatabaseError as exc:
                raise _translate(exc, self.db_path) from None

    # ---- sealing ----------------------------------------------------------------
    def unlock(self) -> None:
        """Load (and so verify) the data key: a wrong passphrase stops a command before it changes anything."""
        self._data_key()

    def _data_key(self) -> bytes:
        if self._key is None:
            self._key = self._key_loader()
        return self._key

    def _seal_all(self, kind: str, owner: str, name: str, secrets: dict[str, str]) -> str:
        from authsome.vault.envelope import associated_data, seal

        key = self._data_key()
        sealed = {
            field: seal(key, value.encode(), associated_data(kind, owner, name, field))
            for field, value in secrets.items()
        }
        return _dumps(sealed, sort_keys=True)

    def _open_connection_field(self, record: ConnectionRecord, field: str, envelope) -> str:
        from authsome.vault.envelope import associated_data, unseal

        where = f"{record.provider} ({record.connection}), field '{field}'"
        aad = associated_data("connection", record.provider, record.connection, field)
        return _decode_text(unseal(self._data_key(), envelope, aad, where), where)

    def _open_client_field(self, record: ClientConfigRecord, field: str, envelope) -> str:
        from authsome.vault.envelope import associated_data, unseal

        where = f"the OAuth client of {record.provider}, field '{field}'"
        aad = associated_data("client", record.provider, record.base_url, field)
        return _decode_text(unseal(self._data_key(), envelope, aad, where), where)

    # ---- connections ----------------------------------------------------------------
    def get_connection(self, provider: str, connection: str) -> ConnectionRecord | None:
        rows = self._read(
            f"SELECT {_CONN_COLUMNS} FROM connections WHERE provider=? AND connection=?", (provider, connection)
        )
        return self._row_to_record(rows[0]) if rows else None

    def list_connections(self, provider: str | None = None) -> list[ConnectionRecord]:
        if provider is None:
            rows = self._read(f"SELECT {_CONN_COLUMNS} FROM connections ORDER BY provider, connection")
        else:
            rows = self._read(
                f"SELECT {_CONN_COLUMNS} FROM connections WHERE provider=? ORDER BY connection", (provider,)
            )
        return [self._row_to_record(r) for r in rows]

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
        sealed = self._seal_all("connection", provider, connection, secrets)
        now = time.time()

        def txn(db):
            row = db.execute(
                "SELECT version, created_at FROM connections WHERE provider=? AND connection=?",
                (provider, connection),
            ).fetchone()
            current = row[0] if row else 0
            if expected_version is not None and current != expected_version:
                raise ConflictError(
                    f"The connection {provider} ({connection}) changed while this command ran "
                    f"(expected version {expected_version}, found {current}); nothing was written.",
                    hint="Re-read it and retry if you still want to change it.",
                )
            created = row[1] if row else now
            db.execute(
                f"INSERT OR REPLACE INTO connections ({_CONN_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    provider,
                    connection,
                    auth_type,
                    flow,
                    status,
                    created,
                    now,
                    expires_at,
                    _dumps(list(scopes)),
                    _dumps(metadata or {}, sort_keys=True),
                    sealed,
                    current + 1,
                ),
            )
            if make_default_if_none:
                db.execute(
                    "INSERT OR IGNORE INTO defaults (provider, connection) VALUES (?, ?)", (provider, connection)
                )
            return current + 1

        return self._write(txn)

    def update_status(self, provider: str, connection: str, status: str, expected_version: int | None = None) -> int:
        def txn(db):
            row = db.execute(
                "SELECT version FROM connections WHERE provider=? AND connection=?", (provider, connection)
            ).fetchone()
            if row is None or (expected_version is not None and row[0] != expected_version):
                raise ConflictError(f"The connection {provider} ({connection}) changed; status not updated.")
            db.execute(
                "UPDATE connections SET status=?, updated_at=?, version=? WHERE provider=? AND connection=?",
                (status, time.time(), row[0] + 1, provider, connection),
            )
            return row[0] + 1

        return self._write(txn)

    def delete_connection(self, provider: str, connection: str) -> bool:
        def txn(db):
            cur = db.execute("DELETE FROM connections WHERE provider=? AND connection=?", (provider, connection))
            db.execute("DELETE FROM defaults WHERE provider=? AND connection=?", (provider, connection))
            # The oldest remaining connection becomes the default, so "no --connection" keeps meaning something.
            db.execute(
                "INSERT OR IGNORE INTO defaults (provider, connection) SELECT provider, connection FROM connections "
                "WHERE provider=? ORDER BY created_at, connection LIMIT 1",
                (provider,),
            )
            return cur.rowcount > 0

        return self._write(txn)

    def delete_provider(self, provider: str) -> int:
        def txn(db):
            n = db.execute("DELETE FROM connections WHERE provider=?", (provider,)).rowcount
            n += db.execute("DELETE FROM client_configs WHERE provider=?", (provider,)).rowcount
            db.execute("DELETE FROM defaults WHERE provider=?", (provider,))
            return n

        return self._write(txn)

    # ---- defaults ----------------------------------------------------------------
    def get_default(self, provider: str) -> str | None:
        rows = self._read("SELECT connection FROM defaults WHERE provider=?", (provider,))
        return rows[0][0] if rows else None

    def all_defaults(self) -> dict[str, str]:
        return dict(self._read("SELECT provider, connection FROM defaults"))

    def set_default(self, provider: str, connection: str) -> None:
        def txn(db):
            exists = db.execute(
                "SELECT 1 FROM connections WHERE provider=? AND connection=?", (provider, connection)
            ).fetchone()
            if not exists:
                return False
            db.execute("INSERT OR REPLACE INTO defaults (provider, connection) VALUES (?, ?)", (provider, connection))
            return True

        return self._write(txn)

    # ---- client configs ----------------------------------------------------------------
    def get_client_config(self, provider: str, base_url: str = "") -> ClientConfigRecord | None:
        rows = self._read(
            "SELECT client_id, metadata, secrets, version FROM client_configs WHERE provider=? AND base_url=?",
            (provider, base_url),
        )
        if not rows:
            return None
        client_id, metadata, secrets, version = rows[0]
        return ClientConfigRecord(
            provider=provider,
            base_url=base_url,
            client_id=client_id,
            metadata=_loads(metadata, dict, f"client config of {provider}"),
            sealed=_loads(secrets, dict, f"client config of {provider}"),
            version=version,
            opener=self._open_client_field,
        )

    def put_client_config(
        self, provider: str, base_url: str, client_id: str, secrets: dict[str, str], metadata: dict | None = None
    ) -> int:
        sealed = self._seal_all("client", provider, base_url, secrets)

        def txn(db):
            row = db.execute(
                "SELECT version FROM client_configs WHERE provider=? AND base_url=?", (provider, base_url)
            ).fetchone()
            version = (row[0] if row else 0) + 1
            db.execute(
                "INSERT OR REPLACE INTO client_configs VALUES (?,?,?,?,?,?,?)",
                (provider, base_url, client_id, _dumps(metadata or {}), sealed, version, time.time()),
            )
            return version

        return self._write(txn)

    # ---- internal records (hidden from list/export/run) ------------------------------
    def get_internal(self, name: str) -> dict[str, str] | None:
        rows = self._read("SELECT secrets FROM internal WHERE name=?", (name,))
        if not rows:
            return None
        from authsome.vault.envelope import associated_data, unseal

        key = self._data_key()
        sealed = _loads(rows[0][0], dict, f"internal record {name}")
        return {
            f: _decode_text(unseal(key, env, associated_data("internal", name, "", f), f"internal record {name}"), name)
            for f, env in sealed.items()
        }

    def put_internal(self, name: str, secrets: dict[str, str]) -> None:
        sealed = self._seal_all("internal", name, "", secrets)
        self._write(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO internal VALUES "
                "(?, ?, COALESCE((SELECT version FROM internal WHERE name=?), 0) + 1, ?)",
                (name, sealed, name, time.time()),
            )
        )

    def delete_internal(self, name: str) -> None:
        self._write(lambda db: db.execute("DELETE FROM internal WHERE name=?", (name,)))

    # ---- integrity ----------------------------------------------------------------
    def check(self, deep: bool = True) -> list[str]:
        """Problems found (empty when healthy): SQLite integrity, then every sealed field opens."""
        problems = []
        rows = self._read("PRAGMA quick_check")
        if rows and rows[0][0] != "ok":
            problems.append(f"SQLite integrity check failed: {rows[0][0]}")
            return problems
        for record in self.list_connections():
            for field in record.secret_fields():
                try:
                    record.secret(field)
                except StoreError as exc:
                    problems.append(exc.message)
        dangling = self._read(
            "SELECT d.provider, d.connection FROM defaults d LEFT JOIN connections c "
            "ON c.provider=d.provider AND c.connection=d.connection WHERE c.provider IS NULL"
        )
        problems.extend(f"The default of {p} points at a missing connection ({c})." for p, c in dangling)
        return problems

    def _row_to_record(self, row) -> ConnectionRecord:
        provider, connection = row[0], row[1]
        return ConnectionRecord(
            provider=provider,
            connection=connection,
            auth_type=row[2],
            flow=row[3],
            status=row[4],
            created_at=row[5],
            updated_at=row[6],
            expires_at=row[7],
            scopes=row[8],  # JSON text, decoded on first use
            metadata=row[9],
            sealed=row[10],
            version=row[11],
            opener=self._open_connection_field,
        )


def _loads(text, kind, where: str):
    from authsome.vault.records import _decode_json

    return _decode_json(text, kind, where)


def _dumps(value, **kwargs) -> str:
    import json

    return json.dumps(value, **kwargs)


def _decode_text(data: bytes, where: str) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise StoreCorruptError(f"The stored secret of {where} is damaged.") from None


def _trace(mark: bytes) -> None:
    if _TRACE_FD >= 0:
        try:
            os.write(_TRACE_FD, mark)
        except OSError:
            pass


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _translate(exc: sqlite3.DatabaseError, path: str) -> StoreError:
    if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
        return StoreLockedError(
            f"The vault {path} is busy: another authsome process held it for over {LOCK_WAIT_SECONDS:.0f} s.",
            hint="Retry; if it persists, look for a stuck authsome process.",
        )
    if isinstance(exc, sqlite3.OperationalError) and ("unable to open" in str(exc) or "readonly" in str(exc)):
        return StoreError(f"Cannot open the vault {path}: {exc}.", hint="Check the file's owner and permissions.")
    return StoreCorruptError(
        f"The vault {path} is damaged ({exc}).",
        hint="Restore it from a backup; authsome will not reset it, so nothing more is lost.",
    )
