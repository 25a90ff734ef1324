"""ProviderRegistry: bundled definitions plus the user's custom ones.

A custom file (``<custom_dir>/<name>.json``) overrides the bundled one of the
same name. ``get`` reads exactly one file, the fast path of ``authsome get``.
A name is checked against the provider-name pattern before it is ever used
in a path, so a name can never walk out of its directory.
"""

from __future__ import annotations

import os

from authsome.errors import ProviderDefinitionError, UnknownProviderError
from authsome.providers.model import Provider
from authsome.providers.parse import is_valid_name, parse_provider

# A plain string: importing this module must not pull in pathlib (and with it re).
BUNDLED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bundled")
UNKNOWN_HINT = "Run 'authsome list --all' to see known providers, or 'authsome register FILE' to add one."
MAX_FILE_SIZE = 256 * 1024


def load_provider_file(path: str | os.PathLike, *, source: str) -> Provider:
    """Read and parse one provider file; every failure is a ProviderDefinitionError."""
    import json

    try:
        with open(path, "rb") as fh:
            blob = fh.read(MAX_FILE_SIZE + 1)
    except OSError as exc:
        raise ProviderDefinitionError(
            f"Cannot read provider definition {path}: {exc.strerror or exc}.",
            hint="Check that the file exists and is readable.",
        )
    if len(blob) > MAX_FILE_SIZE:
        raise ProviderDefinitionError(
            f"Invalid provider definition in {path}: the file is larger than {MAX_FILE_SIZE} bytes."
        )
    try:
        data = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProviderDefinitionError(
            f"Invalid provider definition in {path}: not valid UTF-8 JSON ({exc}).",
            hint="Fix the file; docs/provider-format.md describes the format.",
        )
    return parse_provider(data, source=source, path=os.fspath(path))


class ProviderRegistry:
    """Look up providers by name; custom definitions win over bundled ones."""

    def __init__(self, custom_dir: str | os.PathLike | None) -> None:
        from pathlib import Path

        self.custom_dir = Path(custom_dir) if custom_dir is not None else None
        self.bundled_dir = Path(BUNDLED_DIR)
        # Messages (each naming its file) for the custom files all() skipped as broken.
        self.errors: list[str] = []

    def __repr__(self) -> str:
        return f"ProviderRegistry(custom_dir={str(self.custom_dir)!r})"

    def _custom_path(self, name: str) -> os.PathLike | None:
        return self.custom_dir / f"{name}.json" if self.custom_dir is not None else None

    def get(self, name: str) -> Provider:
        """The provider called ``name``; reads only its own file."""
        if not is_valid_name(name):
            raise self._unknown(name)
        custom = self._custom_path(name)
        if custom is not None and custom.is_file():
            return self._checked(load_provider_file(custom, source="custom"), name, custom)
        bundled = self.bundled_dir / f"{name}.json"
        if bundled.is_file():
            return self._checked(load_provider_file(bundled, source="bundled"), name, bundled)
        raise self._unknown(name)

    def exists(self, name: str) -> bool:
        if not is_valid_name(name):
            return False
        custom = self._custom_path(name)
        return (custom is not None and custom.is_file()) or (self.bundled_dir / f"{name}.json").is_file()

    def names(self) -> list[str]:
        """Every known provider name (bundled and custom), sorted, without parsing any file."""
        found = set(self._names_in(self.bundled_dir))
        if self.custom_dir is not None:
            found.update(self._names_in(self.custom_dir))
        return sorted(found)

    def all(self) -> list[Provider]:
        """Every provider, sorted by name. Broken custom files are skipped and listed in ``errors``."""
        self.errors = []
        providers: dict[str, Provider] = {}
        for name in self._names_in(self.bundled_dir):
            providers[name] = load_provider_file(self.bundled_dir / f"{name}.json", source="bundled")
        if self.custom_dir is not None:
            for name in self._names_in(self.custom_dir):
                path = self.custom_dir / f"{name}.json"
                try:
                    providers[name] = self._checked(load_provider_file(path, source="custom"), name, path)
                except ProviderDefinitionError as exc:
                    self.errors.append(exc.message)
        return [providers[name] for name in sorted(providers)]

    def register(self, file_path: str | os.PathLike) -> Provider:
        """Validate ``file_path`` and install it as ``<custom_dir>/<name>.json`` (0600, atomic)."""
        if self.custom_dir is None:
            raise ProviderDefinitionError("No directory for custom providers is configured.")
        provider = load_provider_file(file_path, source="custom")
        import json

        destination = self.custom_dir / f"{provider.name}.json"
        text = json.dumps(provider.raw, indent=2, ensure_ascii=False) + "\n"
        self.custom_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_atomic(destination, text.encode("utf-8"))
        provider.source, provider.path = "custom", str(destination)
        return provider

    # -- helpers --------------------------------------------------------------
    @staticmethod
    def _names_in(directory: os.PathLike) -> list[str]:
        try:
            entries = os.listdir(directory)
        except (FileNotFoundError, NotADirectoryError):
            return []
        names = (entry[: -len(".json")] for entry in entries if entry.endswith(".json"))
        return sorted(name for name in names if is_valid_name(name))

    @staticmethod
    def _checked(provider: Provider, name: str, path: os.PathLike) -> Provider:
        if provider.name != name:
            raise ProviderDefinitionError(
                f"Invalid provider definition in {path}: field 'name': {provider.name!r} differs from "
                f"the file name {name!r}.",
                hint=f"Rename the file to {provider.name}.json or fix its 'name'.",
            )
        return provider

    @staticmethod
    def _unknown(name: str) -> UnknownProviderError:
        shown = name if is_valid_name(name) else repr(name)[:80]
        return UnknownProviderError(f"Unknown provider: {shown}.", hint=UNKNOWN_HINT)


def _write_atomic(destination: os.PathLike, content: bytes) -> None:
    """Write to a 0600 temporary file in the same directory, fsync, then rename over the target."""
    import secrets

    tmp = destination.with_name(f".{destination.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            view = memoryview(content)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, destination)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:
        dir_fd = os.open(destination.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
