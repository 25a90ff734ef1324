"""Choosing how to ask for a secret (DESIGN.md section 5).

1. the browser form, when there is a display;
2. masked terminal input (getpass) without a display or with ``--no-browser``;
3. opt-in imports for scripts: ``--from-env`` and ``--stdin``.
A value is never taken from argv.
"""

from __future__ import annotations

import os
import sys

from authsome.errors import NoInputError, UsageError

SOURCES = ("auto", "browser", "terminal", "env", "stdin")
STDIN_LIMIT = 64 * 1024


def has_display() -> bool:
    if sys.platform.startswith("linux") or "bsd" in sys.platform:
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True  # macOS and Windows always have a desktop session to open a browser in


def capture(
    request, *, source: str = "auto", env_vars: dict[str, str] | None = None, timeout: float = 300, announce=None
) -> dict[str, str]:
    """Ask for the fields of ``request`` by ``source`` and return validated values."""
    if source == "env":
        values = _from_env(request, env_vars or {})
    elif source == "stdin":
        values = _from_stdin(request)
    else:
        if source == "auto":
            source = "browser" if has_display() else "terminal"
        if source == "browser":
            from authsome.secret_input.browser_form import capture_in_browser

            kwargs = {"timeout": timeout}
            if announce is not None:
                kwargs["announce"] = announce
            return capture_in_browser(request, **kwargs)  # validates on the page, so a typo can be fixed
        from authsome.secret_input.terminal import capture_in_terminal, terminal_available

        if not terminal_available():
            raise NoInputError(
                f"Cannot ask for the {request.display_name} credential ({request.provider}, "
                f"connection {request.connection}): there is no terminal and no display.",
                hint="Use --from-env to read it from the provider's environment variable, or pipe it with --stdin.",
            )
        return capture_in_terminal(request)
    request.validate(values)
    return values


def _from_env(request, env_vars: dict[str, str]) -> dict[str, str]:
    values = {}
    for field in request.fields:
        var = env_vars.get(field.name)
        value = os.environ.get(var) if var else None
        if not value:
            raise NoInputError(
                f"--from-env: {var or 'no variable'} is not set for the {field.label} of {request.display_name} "
                f"({request.provider}, connection {request.connection}).",
                hint=f"Export {var} first, or use --stdin." if var else "Use --stdin for this provider.",
            )
        values[field.name] = value.strip()
    return values


def _from_stdin(request) -> dict[str, str]:
    if sys.stdin is None or sys.stdin.isatty():
        raise NoInputError(
            f"--stdin expects the {request.display_name} credential piped on standard input.",
            hint="Pipe it, e.g. 'pass show openai | authsome login openai --stdin'.",
        )
    data = sys.stdin.read(STDIN_LIMIT + 1)
    if len(data) > STDIN_LIMIT:
        raise NoInputError("--stdin: the input is larger than 64 KiB; that is not a credential.")
    lines = [line.strip() for line in data.splitlines() if line.strip()]
    fields = request.fields
    if len(lines) != len(fields):
        names = ", ".join(f.name for f in fields)
        raise UsageError(
            f"--stdin: expected {len(fields)} non-empty line(s) ({names}) "
            f"for {request.display_name}, got {len(lines)}.",
            hint="Give one value per line, in that order.",
        )
    return {field.name: line for field, line in zip(fields, lines, strict=True)}
