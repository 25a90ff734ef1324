"""The countdown helper on a real pseudo-terminal and on a plain stream."""

from __future__ import annotations

import io
import os
import select
import time

import pytest

from authsome.secret_input.countdown import Countdown, format_duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00"), (0.2, "0:01"), (59, "0:59"), (60, "1:00"), (300, "5:00"), (3725, "1:02:05"), (-3, "0:00")],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_plain_stream_gets_one_line():
    out = io.StringIO()
    with Countdown("Waiting for the OpenAI API key", 90, stream=out) as countdown:
        countdown.tick()
        countdown.tick()
    assert out.getvalue() == "Waiting for the OpenAI API key (up to 1:30; Ctrl-C to cancel)\n"


def test_expired_countdown():
    countdown = Countdown("x", 0, stream=io.StringIO())
    assert countdown.expired
    assert countdown.tick() == 0
    assert "0:00 left" in countdown.render()


def read_available(fd: int, want: str, limit: float = 10.0) -> str:
    """Read from a pty master until ``want`` has been seen (bounded)."""
    data = b""
    deadline = time.monotonic() + limit
    while want.encode() not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            data += os.read(fd, 4096)
    return data.decode()


@pytest.fixture
def pty_stream():
    master, slave = os.openpty()
    stream = open(slave, "w", encoding="utf-8")  # noqa: SIM115
    yield master, stream
    stream.close()
    os.close(master)


@pytest.mark.parametrize("no_color", [False, True])
def test_terminal_line_is_redrawn_and_cleared(pty_stream, monkeypatch, no_color):
    master, stream = pty_stream
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    countdown = Countdown("Waiting for the device approval", 125, stream=stream)
    countdown.tick()
    countdown.tick()
    countdown.clear()
    stream.write("END")
    stream.flush()
    text = read_available(master, "END")
    assert text.count("\r\x1b[2K") == 3  # two redraws in place, one clear
    assert text.count("Waiting for the device approval ... 2:0") == 2
    assert "left (Ctrl-C to cancel)" in text
    assert "\n" not in text.replace("\r\n", "")  # never a new line per tick
    assert ("\x1b[2m" in text) is not no_color


def test_context_manager_ticks_in_the_background(pty_stream):
    master, stream = pty_stream
    with Countdown("Waiting", 60, stream=stream, interval=0.05):
        # Wait until the background thread has redrawn at least twice after the first draw.
        data = ""
        deadline = time.monotonic() + 10
        while data.count("Waiting ...") < 3 and time.monotonic() < deadline:
            data += read_available(master, "Waiting", limit=0.2)
    assert data.count("Waiting ...") >= 3
    stream.write("END")
    stream.flush()
    assert read_available(master, "END").endswith("\r\x1b[2KEND")  # cleared on exit
