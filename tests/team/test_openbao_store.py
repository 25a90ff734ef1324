"""The OpenBao KV v2 store against a real dev server: the store interface's semantics, as the local vault has them."""

from __future__ import annotations

import pytest

from authsome.errors import ConflictError, StoreError
from authsome.home import Home
from authsome.vault.backend import open_store
from authsome.vault.team_init import initialize_team_home, team_settings
from tests.team.bao_server import free_port


@pytest.fixture
def make_store(tmp_path, bao, prefix):
    opened = []

    def make(urls=None, name="home"):
        home = Home(tmp_path / name)
        team = team_settings(urls or [bao.url], None, prefix, None, None)
        config = initialize_team_home(home, team, {"token": bao.root_token}, key_source="file")
        store = open_store(home, config)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def put(store, provider="openai", connection="default", key="sk-one", **kw):
    kw.setdefault("expected_version", None)
    return store.put_connection(
        provider=provider,
        connection=connection,
        auth_type="api_key",
        flow="api_key",
        status="connected",
        secrets={"api_key": key},
        **kw,
    )


def test_roundtrip_versions_and_first_default(make_store, bao, prefix):
    store = make_store()
    assert store.get_connection("openai", "default") is None
    assert put(store, expected_version=0, metadata={"note": "x"}, scopes=["a"]) == 1
    record = store.get_connection("openai", "default")
    assert (record.version, record.status, record.scopes, record.metadata) == (1, "connected", ["a"], {"note": "x"})
    assert record.secret("api_key") == "sk-one"
    assert "sk-one" not in repr(record)
    assert store.get_default("openai") == "default"
    # The engine holds one KV secret per connection, at <mount>/<prefix>/<provider>/<connection>.
    raw = bao.kv_read(f"{prefix}/openai/default")
    assert raw["data"]["secrets"] == {"api_key": "sk-one"} and raw["metadata"]["version"] == 1
    # Status, expiry and scopes are also KV custom metadata: readable by a policy without the secret fields.
    meta = bao.api("GET", f"secret/metadata/{prefix}/openai/default")["data"]["custom_metadata"]
    assert meta["status"] == "connected" and meta["scopes"] == '["a"]' and "sk-one" not in str(meta)
    assert put(store, key="sk-two", expected_version=1) == 2
    assert store.get_connection("openai", "default").created_at == record.created_at
    put(store, connection="work", expected_version=0)
    assert store.get_default("openai") == "default"  # the first connection stays the default
    put(store, provider="anthropic", key="sk-ant-x")
    listed = [(r.provider, r.connection) for r in store.list_connections()]
    assert listed == [("anthropic", "default"), ("openai", "default"), ("openai", "work")]
    assert [r.connection for r in store.list_connections("openai")] == ["default", "work"]
    assert store.all_defaults() == {"anthropic": "default", "openai": "default"}
    assert store.check() == []


def test_check_and_set_conflicts_write_nothing(make_store, bao, prefix):
    store = make_store()
    put(store, expected_version=0)
    with pytest.raises(ConflictError) as err:
        put(store, key="sk-late", expected_version=0)  # a second first login
    assert err.value.exit_code == 7 and err.value.type == "conflict"
    assert "openai (default)" in err.value.message and "version 1" in err.value.message
    with pytest.raises(ConflictError) as err:
        put(store, key="sk-stale", expected_version=5)
    assert "expected version 5" in err.value.message and "found version 1" in err.value.message
    assert bao.kv_read(f"{prefix}/openai/default")["data"]["secrets"]["api_key"] == "sk-one"
    assert bao.kv_read(f"{prefix}/openai/default")["metadata"]["version"] == 1
    with pytest.raises(ConflictError):
        store.update_status("openai", "default", "expired", expected_version=3)
    assert store.update_status("openai", "default", "expired", expected_version=1) == 2
    assert store.get_connection("openai", "default").status == "expired"


def test_two_machines_see_each_other_and_race_on_first_login(make_store):
    machine_a, machine_b = make_store(name="a"), make_store(name="b")
    assert machine_b.get_connection("openai", "default") is None  # b read: absent
    put(machine_a, key="sk-from-a", expected_version=0)
    with pytest.raises(ConflictError):
        put(machine_b, key="sk-from-b", expected_version=0)  # b's write, based on its stale read
    assert machine_b.get_connection("openai", "default").secret("api_key") == "sk-from-a"


def test_delete_moves_default_before_removing_and_never_dangles(make_store, bao, prefix):
    store = make_store()
    put(store, connection="first")
    put(store, connection="second")
    put(store, connection="third")
    assert store.get_default("openai") == "first"
    assert store.delete_connection("openai", "first") is True
    assert store.get_default("openai") == "second"  # the oldest remaining one
    assert store.delete_connection("openai", "first") is False
    assert store.set_default("openai", "third") is True
    assert store.set_default("openai", "missing") is False
    store.delete_connection("openai", "second")
    assert store.get_default("openai") == "third"
    store.delete_connection("openai", "third")
    assert store.get_default("openai") is None
    assert store.list_connections() == []
    assert bao.kv_list(f"{prefix}/openai") == []
    # The name can be used again from scratch (all versions were removed).
    assert put(store, connection="first", expected_version=0) == 1


def test_delete_provider_removes_connections_clients_and_default(make_store, bao, prefix):
    store = make_store()
    put(store, provider="gitlab", connection="a")
    put(store, provider="gitlab", connection="b")
    store.put_client_config("gitlab", "", "client-public", {"client_secret": "cs-1"})
    store.put_client_config("gitlab", "https://gitlab.example.com", "client-ent", {"client_secret": "cs-2"}, {"m": 1})
    put(store, provider="openai")
    client = store.get_client_config("gitlab", "https://gitlab.example.com")
    assert (client.client_id, client.secret("client_secret"), client.metadata) == ("client-ent", "cs-2", {"m": 1})
    assert store.get_client_config("gitlab", "").secret("client_secret") == "cs-1"
    assert store.get_client_config("gitlab", "https://other.example") is None
    assert store.delete_provider("gitlab") == 4
    assert store.get_default("gitlab") is None and store.list_connections("gitlab") == []
    assert store.get_client_config("gitlab", "") is None
    assert bao.kv_list(f"{prefix}/gitlab") == []
    assert [r.provider for r in store.list_connections()] == ["openai"]


def test_soft_deleted_record_reads_absent_and_can_be_created_again(make_store, bao, prefix):
    store = make_store()
    put(store)
    bao.api("DELETE", f"secret/data/{prefix}/openai/default")  # 'bao kv delete': latest version soft-deleted
    assert store.get_connection("openai", "default") is None
    assert put(store, key="sk-again", expected_version=0) == 2
    assert store.get_connection("openai", "default").secret("api_key") == "sk-again"


def test_damaged_record_is_reported_not_crashed(make_store, bao, prefix):
    store = make_store()
    bao.api("POST", f"secret/data/{prefix}/openai/default", {"data": {"kind": "connection", "status": 5}})
    with pytest.raises(StoreError) as err:
        store.get_connection("openai", "default")
    assert err.value.type == "store_corrupt" and "openai (default)" in err.value.message
    assert store.check() and "openai (default)" in store.check()[0]


def test_unreachable_engine_names_every_url(make_store, bao):
    dead = [f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"]
    store = make_store()
    store.engine.urls = dead
    with pytest.raises(StoreError) as err:
        store.get_connection("openai", "default")
    assert err.value.exit_code == 7 and err.value.type == "store"
    assert all(url in err.value.message for url in dead) and "unreachable" in err.value.message


def test_failover_to_the_next_url(make_store, bao):
    dead = f"http://127.0.0.1:{free_port()}"
    store = make_store(urls=[dead, bao.url])
    put(store, expected_version=0)
    assert store.get_connection("openai", "default").secret("api_key") == "sk-one"
    assert store.engine.url == bao.url  # later requests go straight to the node that answered


def test_settings_refuse_plain_http_to_a_remote_engine_and_approle_without_role():
    from authsome.errors import UsageError

    with pytest.raises(UsageError) as err:
        team_settings(["http://bao.example.com:8200"], None, None, None, None)
    assert "https://" in err.value.hint
    for url in ("https://bao.example.com:8200", "http://127.0.0.1:8200", "http://[::1]:8200", "http://localhost:8200"):
        assert team_settings([url], None, None, None, None)["urls"] == [url]
    with pytest.raises(UsageError):
        team_settings(["https://user:pw@bao.example.com"], None, None, None, None)
    with pytest.raises(UsageError):
        team_settings(["https://bao.example.com"], None, None, "approle", None)
    assert team_settings(["https://b.example"], "kv/", "/team/", "approle", "rid") == {
        "urls": ["https://b.example"],
        "mount": "kv",
        "prefix": "team",
        "auth": "approle",
        "role_id": "rid",
    }
