import json
import multiprocessing
import os
import sqlite3
import stat

import pytest

from authsome.errors import ConflictError, StoreCorruptError
from authsome.vault.sqlite_store import SqliteStore

KEY = bytes(range(32))


def make(tmp_path, key=KEY):
    return SqliteStore(tmp_path / "vault.db", lambda: key)


def put(store, provider="openai", connection="default", value="sk-a", **kw):
    return store.put_connection(provider=provider, connection=connection, auth_type="api_key", flow="api_key",
                                status="connected", secrets={"api_key": value}, **kw)


def test_empty_store_reads_nothing_and_creates_nothing(tmp_path):
    store = make(tmp_path)
    assert store.get_connection("openai", "default") is None
    assert store.list_connections() == []
    assert not (tmp_path / "vault.db").exists()


def test_round_trip_and_first_connection_becomes_default(tmp_path):
    store = make(tmp_path)
    assert put(store, value="sk-one") == 1
    put(store, connection="team", value="sk-two")
    assert store.get_default("openai") == "default"
    rec = store.get_connection("openai", "team")
    assert rec.secret("api_key") == "sk-two" and rec.version == 1
    assert "sk-two" not in repr(rec)
    raw = (tmp_path / "vault.db").read_bytes() + (tmp_path / "vault.db-wal").read_bytes() if (tmp_path / "vault.db-wal").exists() else (tmp_path / "vault.db").read_bytes()
    assert b"sk-two" not in raw and b"sk-one" not in raw


def test_database_file_is_private_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        store = make(tmp_path)
        put(store)
        for name in ("vault.db", "vault.db-wal", "vault.db-shm"):
            p = tmp_path / name
            if p.exists():
                assert stat.S_IMODE(p.stat().st_mode) == 0o600, name
    finally:
        os.umask(old)


def test_check_and_set(tmp_path):
    store = make(tmp_path)
    put(store, expected_version=0)
    with pytest.raises(ConflictError):
        put(store, expected_version=0)
    with pytest.raises(ConflictError):
        put(store, expected_version=5)
    assert put(store, value="sk-new", expected_version=1) == 2
    assert store.get_connection("openai", "default").secret("api_key") == "sk-new"


def test_deleting_the_default_promotes_the_oldest_remaining(tmp_path):
    store = make(tmp_path)
    put(store, connection="a")
    put(store, connection="b")
    put(store, connection="c")
    store.set_default("openai", "b")
    assert store.delete_connection("openai", "b")
    assert store.get_default("openai") == "a"
    assert store.delete_provider("openai") == 2
    assert store.get_default("openai") is None and store.list_connections() == []


def test_swapped_ciphertexts_fail_authentication(tmp_path):
    store = make(tmp_path)
    put(store, connection="a", value="sk-a")
    put(store, connection="b", value="sk-b")
    db = sqlite3.connect(tmp_path / "vault.db")
    a = db.execute("SELECT secrets FROM connections WHERE connection='a'").fetchone()[0]
    b = db.execute("SELECT secrets FROM connections WHERE connection='b'").fetchone()[0]
    db.execute("UPDATE connections SET secrets=? WHERE connection='a'", (b,))
    db.execute("UPDATE connections SET secrets=? WHERE connection='b'", (a,))
    db.commit()
    db.close()
    fresh = make(tmp_path)
    for name in ("a", "b"):
        with pytest.raises(StoreCorruptError, match="failed authentication"):
            fresh.get_connection("openai", name).secret("api_key")
    assert len(fresh.check()) == 2


def test_damaged_metadata_is_reported_not_reset(tmp_path):
    store = make(tmp_path)
    put(store)
    db = sqlite3.connect(tmp_path / "vault.db")
    db.execute("UPDATE connections SET scopes='{not json'")
    db.commit()
    db.close()
    record = make(tmp_path).get_connection("openai", "default")
    assert record.status == "connected"  # the undamaged columns still read
    with pytest.raises(StoreCorruptError, match="damaged"):
        _ = record.scopes


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_database_file(tmp_path, damage):
    store = make(tmp_path)
    for i in range(50):
        put(store, connection=f"c{i}")
    store.close()
    path = tmp_path / "vault.db"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3] if damage == "truncate" else b"\0garbage" * 100)
    with pytest.raises(StoreCorruptError):
        s = make(tmp_path)
        s.list_connections()
        s.check()
    assert path.stat().st_size > 0  # never reset


def _writer(path, worker, count):
    store = SqliteStore(path, lambda: KEY)
    for i in range(count):
        rec = store.get_connection("openai", "counter")
        while True:
            try:
                version = rec.version if rec else 0
                value = int(rec.secret("api_key")) if rec else 0
                store.put_connection(provider="openai", connection="counter", auth_type="api_key",
                                     flow="api_key", status="connected", secrets={"api_key": str(value + 1)},
                                     expected_version=version)
                break
            except ConflictError:
                rec = store.get_connection("openai", "counter")
        store.put_connection(provider="openai", connection=f"w{worker}-{i}", auth_type="api_key",
                             flow="api_key", status="connected", secrets={"api_key": "x"})


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "vault.db"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 25)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = make(tmp_path)
    assert store.get_connection("openai", "counter").secret("api_key") == "100"
    assert len(store.list_connections()) == 101


def test_internal_records_hidden_from_connections(tmp_path):
    store = make(tmp_path)
    store.put_internal("team-token", {"token": "hvs.secret"})
    assert store.get_internal("team-token") == {"token": "hvs.secret"}
    assert store.list_connections() == []
    store.delete_internal("team-token")
    assert store.get_internal("team-token") is None


def test_client_config_round_trip(tmp_path):
    store = make(tmp_path)
    store.put_client_config("github", "https://ghe.example", "cid", {"client_secret": "cs"}, {"registered": True})
    rec = store.get_client_config("github", "https://ghe.example")
    assert rec.client_id == "cid" and rec.secret("client_secret") == "cs" and rec.metadata == {"registered": True}
    assert store.get_client_config("github", "") is None
    assert "cs" not in repr(rec) and json.dumps(rec.metadata)
