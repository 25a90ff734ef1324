"""Key sources: where the vault's 256-bit data key lives.

One explicit source per home, recorded in config.json and never switched
silently: ``keyring`` (a real OS keyring backend only), ``file``
(``vault.key``, 0600) or ``passphrase`` (scrypt, memory-hard).
"""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path

from authsome.errors import NoInputError, StoreCorruptError, StoreError, WrongPassphraseError
from authsome.vault.envelope import KEY_BYTES, key_id

KEY_SOURCES = ("keyring", "file", "passphrase")
KEYRING_SERVICE = "authsome"
# scrypt with N=2**16, r=8 uses 64 MiB and about 0.2 s here: slow for guessing, fine once per command.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**16, 8, 1
# Backends that would store the key in plaintext or not at all.
_REFUSED_BACKENDS = ("fail", "chainer", "null", "keyrings.alt", "plaintext")


def new_key_config(source: str, home_path: Path, *, passphrase: str | None = None) -> tuple[dict, bytes]:
    """Create a key in ``source`` and return (config entries, key)."""
    if source == "file":
        key = os.urandom(KEY_BYTES)
        _write_key_file(home_path / "vault.key", key)
        return {"key_source": "file", "key_id": key_id(key)}, key
    if source == "keyring":
        backend = usable_keyring_backend()
        if backend is None:
            raise StoreError(
                "No usable OS keyring (Secret Service or macOS Keychain) was found.",
                hint="Use 'authsome init --key-source file' or '--key-source passphrase'.",
            )
        key = os.urandom(KEY_BYTES)
        username = f"vault-key:{uuid.uuid4()}"
        backend.set_password(KEYRING_SERVICE, username, base64.b64encode(key).decode())
        if backend.get_password(KEYRING_SERVICE, username) != base64.b64encode(key).decode():
            raise StoreError("The OS keyring did not keep the vault key.", hint="Use '--key-source file'.")
        entry = {"backend": _backend_name(backend), "service": KEYRING_SERVICE, "username": username}
        return {"key_source": "keyring", "key_id": key_id(key), "keyring": entry}, key
    if source == "passphrase":
        if not passphrase:
            raise NoInputError("A passphrase is needed to create a passphrase-protected vault.")
        salt = os.urandom(16)
        key = _derive(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        kdf = {"kdf": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "salt": base64.b64encode(salt).decode()}
        return {"key_source": "passphrase", "key_id": key_id(key), "passphrase": kdf}, key
    raise StoreError(f"Unknown key source {source!r}.", hint=f"Use one of: {', '.join(KEY_SOURCES)}.")


def load_key(config: dict, home_path: Path, *, ask_passphrase=None) -> bytes:
    """Load the data key named by ``config`` and check it against the recorded key id."""
    source = config.get("key_source")
    if source == "file":
        key = _read_key_file(home_path / "vault.key")
    elif source == "keyring":
        key = _read_keyring(config.get("keyring") or {})
    elif source == "passphrase":
        key = _read_passphrase_key(config.get("passphrase") or {}, ask_passphrase)
        if key_id(key) != config.get("key_id"):
            raise WrongPassphraseError(
                "Wrong passphrase for the authsome vault.",
                hint="Check AUTHSOME_PASSPHRASE or retype it; nothing was changed.",
            )
        return key
    else:
        raise StoreCorruptError(f"config.json names an unknown key source {source!r}.")
    if key_id(key) != config.get("key_id"):
        raise StoreCorruptError(
            f"The vault key from the {source} key source does not match this vault (key id mismatch).",
            hint="Restore the original key (vault.key or keyring entry); authsome will not reset the vault.",
        )
    return key


def usable_keyring_backend(timeout: float = 5.0):
    """A real keyring backend that works, or None. Never a fail/chainer/plaintext one.

    A locked keyring with no display to prompt on can block for a long time, so the probe
    runs in a daemon thread and counts as unusable when it does not answer in ``timeout``.
    """
    import threading

    found = []
    probe = threading.Thread(target=lambda: found.append(_probe_keyring_backends()), daemon=True)
    probe.start()
    probe.join(timeout)
    return found[0] if found else None


def _skip_foreign_keyring_backends() -> None:
    """Off macOS, keep keyring's macOS backend from loading its ctypes API: that import runs
    ``ctypes.util.find_library``, which spawns ldconfig/gcc/ld with this process's whole environment
    (a ``--from-env`` key, ``AUTHSOME_PASSPHRASE``), and the backend cannot work here anyway."""
    import sys

    if sys.platform != "darwin":
        sys.modules.setdefault("keyring.backends.macOS.api", None)  # type: ignore[arg-type]


def _probe_keyring_backends():
    _skip_foreign_keyring_backends()
    try:
        import keyring.backend
    except Exception:  # noqa: BLE001 - any import problem means no keyring
        return None
    candidates = []
    for backend in keyring.backend.get_all_keyring():
        name = _backend_name(backend).lower()
        if any(bad in name for bad in _REFUSED_BACKENDS):
            continue
        if ("secretservice" in name or "macos" in name or "windows" in name) and backend.priority > 0:
            candidates.append(backend)
    for backend in sorted(candidates, key=lambda b: b.priority, reverse=True):
        probe = f"probe:{uuid.uuid4()}"
        try:
            backend.set_password(KEYRING_SERVICE, probe, "probe")
            ok = backend.get_password(KEYRING_SERVICE, probe) == "probe"
            backend.delete_password(KEYRING_SERVICE, probe)
        except Exception:  # noqa: BLE001, S112 - a backend that errors is not usable
            continue
        if ok:
            return backend
    return None


def _backend_name(backend) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def _read_keyring(entry: dict) -> bytes:
    wanted = entry.get("backend")
    backend = None
    _skip_foreign_keyring_backends()
    try:
        import keyring.backend

        backend = next((b for b in keyring.backend.get_all_keyring() if _backend_name(b) == wanted), None)
    except Exception:  # noqa: BLE001
        backend = None
    if backend is None:
        raise StoreError(
            f"The OS keyring backend this vault uses ({wanted}) is not available.",
            hint="Unlock or start your keyring (e.g. log in to the desktop session) and retry.",
        )
    try:
        value = backend.get_password(entry.get("service", KEYRING_SERVICE), entry.get("username", ""))
    except Exception:  # noqa: BLE001
        value = None
    if not value:
        raise StoreError("The vault key is missing from the OS keyring.", hint="Unlock the keyring and retry.")
    return _decode_key(value.encode(), "OS keyring entry")


def _read_passphrase_key(kdf: dict, ask_passphrase) -> bytes:
    passphrase = os.environ.get("AUTHSOME_PASSPHRASE")
    if not passphrase and ask_passphrase is not None:
        passphrase = ask_passphrase()
    if not passphrase:
        raise NoInputError(
            "The vault is passphrase-protected and no passphrase was given.",
            hint="Set AUTHSOME_PASSPHRASE or run from a terminal.",
        )
    try:
        salt = base64.b64decode(kdf["salt"], validate=True)
        n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
    except (KeyError, ValueError, TypeError):
        raise StoreCorruptError("config.json has damaged passphrase parameters.") from None
    if kdf.get("kdf") != "scrypt" or not (2**14 <= n <= 2**22) or not (1 <= r <= 32) or not (1 <= p <= 16):
        raise StoreCorruptError("config.json has unsupported passphrase parameters.")
    return _derive(passphrase, salt, n, r, p)


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    import hashlib

    return hashlib.scrypt(passphrase.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=KEY_BYTES)


def _write_key_file(path: Path, key: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, base64.b64encode(key) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_key_file(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StoreError(
            f"The vault key file {path} is missing.",
            hint="Restore it from a backup: without it the stored secrets cannot be decrypted.",
        ) from None
    except OSError as exc:
        raise StoreError(f"Cannot read the vault key file {path}: {exc.strerror}.") from None
    return _decode_key(raw.strip(), str(path))


def _decode_key(raw: bytes, where: str) -> bytes:
    try:
        key = base64.b64decode(raw, validate=True)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise StoreCorruptError(f"The vault key in {where} is damaged.", hint="Restore it from a backup.")
    return key
