"""``whoami`` and ``doctor``: what this home is and whether it is healthy."""

from __future__ import annotations

import os
import stat

from authsome.errors import AuthsomeError, ForbiddenError


def whoami(client) -> dict:
    config = client.config
    info = {"home": str(client.home.path), "initialised": config is not None}
    if config is not None:
        info.update(
            {
                "backend": config.get("backend", "local"),
                "key_source": config.get("key_source"),
                "key_id": config.get("key_id"),
            }
        )
        if config.get("key_source") == "keyring":
            info["keyring_backend"] = (config.get("keyring") or {}).get("backend")
        if info["backend"] != "local":
            info.update(client.store.describe())
        try:
            info["connections"] = len(client.store.list_connections())
        except ForbiddenError:
            info["connections"] = "not listable with this token"
    info["custom_providers_dir"] = str(client.home.providers_dir)
    return info


def doctor(client) -> list[dict]:
    """A list of checks ``{"check", "ok", "detail"}``; nothing here touches the network."""
    home = client.home
    checks: list[dict] = []

    def add(name: str, ok: bool, detail: str = "") -> None:
        checks.append({"check": name, "ok": ok, "detail": detail})

    if not home.path.exists():
        add("home", True, f"{home.path} does not exist yet (created on first login)")
        return checks
    add("home directory mode", _mode(home.path) == 0o700, f"{home.path} is {_mode(home.path):o}, want 700")
    for path in _private_files(home):
        mode = _mode(path)
        add(f"file mode {path.name}", mode == 0o600, f"{path} is {mode:o}, want 600")
    try:
        config = client.config
    except AuthsomeError as exc:
        add("config", False, exc.message)
        return checks
    if config is None:
        add("config", True, "not initialised yet (created on first login)")
        return checks
    add("config", True, f"key source {config.get('key_source')}")
    try:
        problems = client.store.check()
    except AuthsomeError as exc:
        problems = [exc.message]
    add("vault integrity", not problems, "; ".join(problems) or "every record opens")
    registry = client.registry
    registry.all()
    errors = getattr(registry, "errors", None) or []
    add("custom providers", not errors, "; ".join(str(e) for e in errors) or "all definitions valid")
    return checks


def isolation_check() -> dict:
    """Whether `run --isolate` can build its sandbox here (informational: not every platform can)."""
    from authsome.sandbox import probe

    ok, detail = probe()
    return {"check": "run --isolate", "ok": ok, "detail": detail, "informational": True}


def _private_files(home) -> list:
    names = ["config.json", "vault.db", "vault.db-wal", "vault.db-shm", "vault.key", "audit.log"]
    files = [home.path / n for n in names if (home.path / n).exists()]
    if home.providers_dir.exists():
        files.extend(sorted(home.providers_dir.glob("*.json")))
    return files


def _mode(path) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0
