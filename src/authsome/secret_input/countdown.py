"""A live "time left" line on stderr while authsome waits on a person.

Used by the browser form now and by OAuth callback / device-code waits later.
On a terminal the line is redrawn in place (``tick()``, or every second from a
background thread when used as a context manager); elsewhere one plain line is
written once, so logs and pipes stay readable. Colour only on a terminal and
never when ``NO_COLOR`` is set.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

_CLEAR_LINE = "\r\x1b[2K"
_DIM = "\x1b[2m"
_RESET = "\x1b[0m"


def format_duration(seconds: float) -> str:
    """``75`` -> ``1:15``; ``3725`` -> ``1:02:05``."""
    total = max(0, int(seconds + 0.999))  # round up: never show 0:00 while time is left
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


class Countdown:
    """``with Countdown("Waiting for the OpenAI API key", 300): ...`` or call ``tick()``."""

    def __init__(
        self,
        label: str,
        seconds: float,
        *,
        stream: TextIO | None = None,
        interval: float = 1.0,
    ) -> None:
        self.label = label
        self.seconds = seconds
        self.interval = interval
        self._stream = stream if stream is not None else sys.stderr
        self._deadline = time.monotonic() + seconds
        self._live = _is_tty(self._stream)
        self._colour = self._live and not os.environ.get("NO_COLOR")
        self._plain_written = False
        self._drawn = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def remaining(self) -> float:
        return max(0.0, self._deadline - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining <= 0

    def render(self) -> str:
        """The text of the line (without terminal control sequences)."""
        return f"{self.label} ... {format_duration(self.remaining)} left (Ctrl-C to cancel)"

    def tick(self) -> float:
        """Redraw the line (a terminal) or write it once (elsewhere); returns seconds left."""
        left = self.remaining
        with self._lock:
            if self._live:
                text = self.render()
                if self._colour:
                    text = f"{_DIM}{text}{_RESET}"
                self._write(_CLEAR_LINE + text)
                self._drawn = True
            elif not self._plain_written:
                limit = format_duration(self.seconds)
                self._write(f"{self.label} (up to {limit}; Ctrl-C to cancel)\n")
                self._plain_written = True
        return left

    def clear(self) -> None:
        """Remove the live line so the next message starts on a clean line."""
        with self._lock:
            if self._live and self._drawn:
                self._write(_CLEAR_LINE)
                self._drawn = False

    def start(self) -> Countdown:
        self.tick()
        if self._live and self._thread is None:
            thread = threading.Thread(target=self._run, name="authsome-countdown", daemon=True)
            thread.start()
            self._thread = thread  # only once started: a Ctrl-C inside start() must not leave stop() a thread to join
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.ident is not None:
            self._thread.join(timeout=2)
        self._thread = None
        self.clear()

    def __enter__(self) -> Countdown:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()
            if self.expired:
                return

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):
            # stderr went away (closed pipe, closed file): the countdown is cosmetic.
            self._live = False


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
