"""Append-only audit log (JSON lines in $AUTHSOME_HOME/audit.log). Never secret material."""

from __future__ import annotations

import json
import os
import threading
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


#: Buffered events are written out at least this often, so a long run's buffer stays small.
_FLUSH_EVERY = 512


class AuditLog:
    """Thread-safe: the proxy records from one thread per connection."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        # (unix time, event, fields): formatted when written, off the proxy's per-request path.
        self._buffer: list[tuple[float, str, dict]] = []
        self._lock = threading.Lock()

    def record(self, event: str, *, buffered: bool = False, **fields) -> None:
        with self._lock:
            self._buffer.append((time.time(), event, fields))
            full = len(self._buffer) >= _FLUSH_EVERY
        if full or not buffered:
            self.flush()

    @staticmethod
    def _line(when: float, event: str, fields: dict) -> str:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)), "event": event}
        entry.update({k: v for k, v in fields.items() if k in _ALLOWED and v is not None})
        return json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n"

    def flush(self) -> None:
        with self._lock:
            pending, self._buffer = self._buffer, []
        if not pending:
            return
        data = "".join(self._line(*item) for item in pending).encode()
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
