import stat

import pytest

from authsome.errors import NoInputError, StoreCorruptError, StoreError, WrongPassphraseError
from authsome.vault.keysource import load_key, new_key_config


def test_key_file_is_private_and_loads(tmp_path):
    entries, key = new_key_config("file", tmp_path)
    assert stat.S_IMODE((tmp_path / "vault.key").stat().st_mode) == 0o600
    assert load_key(entries, tmp_path) == key
    with pytest.raises(FileExistsError):
        new_key_config("file", tmp_path)  # never overwrites an existing key


def test_missing_or_damaged_key_file(tmp_path):
    entries, _ = new_key_config("file", tmp_path)
    (tmp_path / "vault.key").write_text("not base64 !!")
    with pytest.raises(StoreCorruptError):
        load_key(entries, tmp_path)
    (tmp_path / "vault.key").unlink()
    with pytest.raises(StoreError, match="missing"):
        load_key(entries, tmp_path)


def test_swapped_key_file_detected_by_key_id(tmp_path):
    entries, _ = new_key_config("file", tmp_path)
    (tmp_path / "vault.key").unlink()
    new_key_config("file", tmp_path)
    with pytest.raises(StoreCorruptError, match="does not match"):
        load_key(entries, tmp_path)


def test_passphrase(tmp_path, monkeypatch):
    entries, key = new_key_config("passphrase", tmp_path, passphrase="correct horse")
    assert entries["passphrase"]["kdf"] == "scrypt" and "correct" not in str(entries)
    monkeypatch.setenv("AUTHSOME_PASSPHRASE", "correct horse")
    assert load_key(entries, tmp_path) == key
    monkeypatch.setenv("AUTHSOME_PASSPHRASE", "wrong")
    with pytest.raises(WrongPassphraseError):
        load_key(entries, tmp_path)
    monkeypatch.delenv("AUTHSOME_PASSPHRASE")
    with pytest.raises(NoInputError):
        load_key(entries, tmp_path)
    assert load_key(entries, tmp_path, ask_passphrase=lambda: "correct horse") == key


def test_weak_kdf_parameters_refused(tmp_path, monkeypatch):
    entries, _ = new_key_config("passphrase", tmp_path, passphrase="pw")
    entries["passphrase"]["n"] = 2
    monkeypatch.setenv("AUTHSOME_PASSPHRASE", "pw")
    with pytest.raises(StoreCorruptError):
        load_key(entries, tmp_path)
