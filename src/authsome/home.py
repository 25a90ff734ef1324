"""Locating AUTHSOME_HOME, its layout, permissions and config.json."""

from __future__ import annotations

import json
import os
from pathlib import Path

from authsome.errors import StoreCorruptError, StoreError

CONFIG_VERSION = 1
DIR_MODE = 0o700
FILE_MODE = 0o600


def default_home_path() -> Path:
    env = os.environ.get("AUTHSOME_HOME")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".authsome"


class Home:
    """The directory that holds one user's vault, config and custom providers."""

    __slots__ = ("path",)

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_home_path()

    config_path = property(lambda self: self.path / "config.json")
    db_path = property(lambda self: self.path / "vault.db")
    key_path = property(lambda self: self.path / "vault.key")
    providers_dir = property(lambda self: self.path / "providers")
    audit_path = property(lambda self: self.path / "audit.log")
    locks_dir = property(lambda self: self.path / "locks")

    def exists(self) -> bool:
        return self.config_path.exists()

    def ensure_dirs(self) -> None:
        """Create the home (0700) and its subdirectories, whatever the umask."""
        for d in (self.path, self.providers_dir, self.locks_dir):
            try:
                d.mkdir(mode=DIR_MODE, parents=(d == self.path), exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"Cannot create the authsome home directory {d}: {exc.strerror}.",
                    hint="Check the path and its permissions, or set AUTHSOME_HOME.",
                ) from None
            os.chmod(d, DIR_MODE)

    def load_config(self) -> dict | None:
        try:
            raw = self.config_path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"Cannot read {self.config_path}: {exc.strerror}.") from None
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("key_source"), str):
            raise StoreCorruptError(
                f"{self.config_path} is damaged (not a valid authsome config).",
                hint="Restore it from a backup; authsome will not reset it, so nothing is lost.",
            )
        return data

    def save_config(self, config: dict) -> None:
        write_private_file(self.config_path, (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())


def write_private_file(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``, mode 0600, durable on return."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
