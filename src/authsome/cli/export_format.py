"""Formats for ``authsome export``: env, shell (safe for eval) and json."""

from __future__ import annotations

import json

from authsome.errors import InvalidCredentialError

FORMATS = ("env", "shell", "json")
_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:+=@-")


def shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def render(variables: dict[str, str], fmt: str) -> str:
    for name, value in variables.items():
        if "\n" in value or "\r" in value or "\0" in value:
            raise InvalidCredentialError(
                f"The value for {name} contains a line break or NUL and cannot be exported safely.",
                hint="Log in again with a clean value (authsome login ... --force).",
            )
    if fmt == "json":
        return json.dumps(variables, indent=2) + "\n"
    lines = []
    for name, value in variables.items():
        if fmt == "shell":
            lines.append(f"export {name}={shell_quote(value)}")
        else:
            bare = value and all(c in _BARE for c in value)
            lines.append(f"{name}={value if bare else shell_quote(value)}")
    return "".join(line + "\n" for line in lines)
