"""The offline cache of a team home: the last connection records and defaults read from the engine.

Kept as internal records of the home's local vault, so sealed with its key
(AES-256-GCM, like every local secret) and hidden from list/export/run. Every
successful read refreshes it (a write only when the engine's version
changed). It is served only when the caller opted in (``--offline-ok``, i.e.
``AUTHSOME_OFFLINE_OK=1``) and the engine is unreachable, never when the
engine refuses (forbidden) or conflicts, and each serving says so on stderr
with the copy's age.
"""

from __future__ import annotations

import json
import os
import time

CACHE_PREFIX = "team-cache:"
OFFLINE_ENV_VAR = "AUTHSOME_OFFLINE_OK"


def offline_ok_requested() -> bool:
    return os.environ.get(OFFLINE_ENV_VAR, "") == "1"


class OfflineCache:
    def __init__(self, local, *, serve: bool = False, notice=None) -> None:
        self.local = local
        self.serve = serve
        self._notice = notice
        self.served: list[str] = []

    def remember(self, path: str, found: tuple[dict, int] | None) -> None:
        name = CACHE_PREFIX + path
        cached = self._load(name)
        if found is None:
            if cached is not None:
                self.local.delete_internal(name)
            return
        data, version = found
        if cached is not None and cached["version"] == version and cached["data"] == data:
            return
        payload = json.dumps({"data": data, "version": version, "fetched_at": time.time()}, sort_keys=True)
        self.local.put_internal(name, {"payload": payload})

    def recall(self, path: str, what: str) -> tuple[dict, int] | None:
        cached = self._load(CACHE_PREFIX + path)
        if cached is None:
            return None
        age = _age_text(time.time() - float(cached.get("fetched_at") or 0))
        message = f"The team vault is unreachable: {what} comes from the local offline cache ({age} old)."
        self.served.append(message)
        if self._notice is not None:
            self._notice(message)
        return cached["data"], int(cached["version"])

    def _load(self, name: str) -> dict | None:
        stored = self.local.get_internal(name)
        if not stored or "payload" not in stored:
            return None
        try:
            value = json.loads(stored["payload"])
        except ValueError:
            return None
        return value if isinstance(value, dict) and isinstance(value.get("data"), dict) else None


def _age_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"
