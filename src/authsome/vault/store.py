"""The store interface every backend implements (local SQLite, team KV engine).

Versions and check-and-set are part of the interface: ``expected_version``
is ``None`` (write unconditionally), ``0`` (the record must not exist) or the
version last read (it must not have changed); a mismatch raises
``ConflictError`` and writes nothing.

    get_connection(provider, connection) -> ConnectionRecord | None
    list_connections(provider=None) -> list[ConnectionRecord]      # sorted
    put_connection(record_fields..., secrets, expected_version, make_default_if_none) -> int
    update_status(provider, connection, status, expected_version) -> int
    delete_connection(provider, connection) -> bool                # also clears a default pointing at it
    delete_provider(provider) -> int                               # connections, client configs, default
    get_default(provider) -> str | None
    set_default(provider, connection) -> None
    get_client_config(provider, base_url) -> ClientConfigRecord | None
    put_client_config(provider, base_url, client_id, secrets, metadata) -> int
    get_internal(name) -> dict[str, str] | None                   # hidden records (team token)
    put_internal(name, secrets) / delete_internal(name)
    check() -> list[str]                                           # integrity problems, for doctor
"""

from authsome.connection_info import AVAILABLE, CONNECTED, EXPIRED  # noqa: F401 - re-exported
