"""Masked input on the controlling terminal, for machines without a display.

Everything is read from and written to /dev/tty, never stdin/stdout, so it
works while stdout is piped and never mixes prompts into data output. Secret
fields go through ``getpass`` with echo off; if echo cannot be turned off we
refuse rather than let the value show on screen.
"""

from __future__ import annotations

import getpass
import os
import warnings

from authsome.errors import CancelledError, InvalidCredentialError, NoInputError
from authsome.secret_input.request import FieldSpec, SecretRequest

_TTY = "/dev/tty"


def terminal_available() -> bool:
    """Can the controlling terminal be opened for reading and writing?"""
    try:
        fd = os.open(_TTY, os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.isatty(fd)
    finally:
        os.close(fd)


def capture_in_terminal(request: SecretRequest) -> dict[str, str]:
    """Ask for each field on the terminal, validate, and return the values.

    Raises InvalidCredentialError for a bad value (nothing is stored by the
    caller), CancelledError on Ctrl-C or end of input, NoInputError without a terminal.
    """
    if not terminal_available():
        raise NoInputError(
            f"No terminal to ask for the {request.describe()}.",
            "Pipe the value with --stdin, or set the provider's variable and use --from-env.",
        )
    values: dict[str, str] = {}
    try:
        for field in request.fields:
            values[field.name] = _ask(request, field)
    except (EOFError, KeyboardInterrupt):
        _write_tty("\n")
        raise CancelledError(f"Cancelled while asking for the {request.describe()}; nothing was stored.") from None
    request.validate(values)
    return values


def _ask(request: SecretRequest, field: FieldSpec) -> str:
    if field.hint:
        _write_tty(f"{field.hint}\n")
    prompt = f"{request.display_name} {field.label} for {request.provider} ({request.connection}): "
    value = _read_secret(prompt) if field.secret else _read_line(prompt)
    value = value.strip()
    if not value:
        raise InvalidCredentialError(
            f"No {field.label} was entered for {request.provider} ({request.connection}).",
            "Run the command again and paste the value at the prompt.",
        )
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise InvalidCredentialError(
            f"The {field.label} for {request.provider} ({request.connection}) contains control characters.",
            "Paste the value again, without extra characters.",
        )
    return value


def _read_secret(prompt: str) -> str:
    # getpass falls back to an echoing read (with a warning) when it cannot
    # switch echo off; turn that warning into a refusal instead.
    with warnings.catch_warnings():
        warnings.simplefilter("error", getpass.GetPassWarning)
        try:
            return getpass.getpass(prompt)
        except getpass.GetPassWarning:
            raise NoInputError(
                "Cannot switch off echo on this terminal, so the value would be shown.",
                "Pipe the value with --stdin, or set the provider's variable and use --from-env.",
            ) from None


def _read_line(prompt: str) -> str:
    _write_tty(prompt)
    with open(_TTY, encoding="utf-8", errors="replace") as tty:
        line = tty.readline()
    if not line:
        raise EOFError
    return line.rstrip("\r\n")


def _write_tty(text: str) -> None:
    try:
        with open(_TTY, "w", encoding="utf-8") as tty:
            tty.write(text)
    except OSError:
        pass
