"""The library API mirrors the CLI (README "From Python")."""

import pytest

from authsome import Authsome
from authsome.errors import ConnectionNotFoundError, InvalidCredentialError, NotLoggedInError, UnknownProviderError
from tests.conftest import canary_key


def test_library_round_trip(home, monkeypatch):
    key, team = canary_key(), canary_key()
    notices = []
    client = Authsome(home, notice=notices.append)
    monkeypatch.setenv("OPENAI_API_KEY", key)
    assert client.login("openai", source="env")["changed"] is True
    assert any("Initialised authsome home" in n for n in notices)
    monkeypatch.setenv("OPENAI_API_KEY", team)
    client.login("openai", "team", source="env")
    rows = client.list_connections()
    assert [(r["connection"], r["is_default"]) for r in rows] == [("default", True), ("team", False)]
    assert client.get_metadata("openai")["api_key"] == "[redacted]"
    assert client.get_secret("openai") == key
    assert client.get_secret("openai", "team") == team
    assert client.auth_headers("openai") == {"Authorization": f"Bearer {key}"}
    assert client.export_env("openai", connection="team") == {"OPENAI_API_KEY": team}
    client.close()


def test_library_errors(home, monkeypatch):
    client = Authsome(home)
    with pytest.raises(UnknownProviderError) as info:
        client.get_metadata("nosuch")
    assert info.value.exit_code == 3
    with pytest.raises(NotLoggedInError):
        client.get_secret("openai")
    monkeypatch.setenv("OPENAI_API_KEY", "oops")
    with pytest.raises(InvalidCredentialError) as info:
        client.login("openai", source="env")
    assert info.value.exit_code == 4 and "oops" not in repr(info.value)
    monkeypatch.setenv("OPENAI_API_KEY", canary_key())
    client.login("openai", source="env")
    with pytest.raises(ConnectionNotFoundError):
        client.get_secret("openai", "missing")


def test_multi_field_provider_headers(home, monkeypatch):
    client = Authsome(home)
    provider = client.provider("twilio")
    env = {f.name: f.env_var for f in provider.fields}
    monkeypatch.setenv(env["account_sid"], "AC" + "0" * 32)
    monkeypatch.setenv(env["auth_token"], "tok" + "1" * 29)
    client.login("twilio", source="env")
    headers = client.auth_headers("twilio")
    assert headers["Authorization"].startswith("Basic ")
    meta = client.get_metadata("twilio")
    assert meta["auth_token"] == "[redacted]" and meta["account_sid"] == "AC" + "0" * 32
