"""Append-only audit log (JSON lines in $AUTHSOME_HOME/audit.log). Never secret material."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

# Keys an event may carry; anything else is dropped so a caller cannot log a secret by accident.
_ALLOWED = frozenset(
    {
        "event",
        "provider",
        "connection",
        "outcome",
        "flow",
        "host",
        "method",
        "path",
        "status",
        "detail",
        "field",
        "format",
        "source",
        "pid",
    }
)


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._buffer: list[str] = []

    def record(self, event: str, *, buffered: bool = False, **fields) -> None:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "event": event}
        entry.update({k: v for k, v in fields.items() if k in _ALLOWED and v is not None})
        line = json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n"
        self._buffer.append(line)
        if not buffered:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        data = "".join(self._buffer).encode()
        self._buffer.clear()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except FileNotFoundError:
            return  # no home yet: nothing has happened worth recording
        try:
            os.write(fd, data)  # one write() with O_APPEND: lines from parallel processes do not interleave
        finally:
            os.close(fd)

    def read(self, limit: int | None = None) -> list[dict]:
        try:
            lines = self.path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []
        events = []
        for line in lines[-limit:] if limit else lines:
            try:
                item = json.loads(line)
            except ValueError:
                item = {"event": "unreadable", "detail": "damaged line skipped"}
            if isinstance(item, dict):
                events.append(item)
        return events
