"""Rendering for the CLI: stdout carries data only, messages go to stderr.

With ``--json`` stdout holds exactly one JSON document, also on failure:
``{"error": {"code", "type", "message", "hint"}}``.
"""

from __future__ import annotations

import os
import sys

REPORT_URL = "https://github.com/authsome/authsome/issues"


def use_colour(stream) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def _paint(text: str, code: str, stream) -> str:
    return f"\033[{code}m{text}\033[0m" if use_colour(stream) else text


def message(text: str) -> None:
    """A line for the person (progress, success), on stderr."""
    print(text, file=sys.stderr, flush=True)


def success(text: str) -> None:
    print(_paint(text, "32", sys.stderr), file=sys.stderr, flush=True)


def emit_json(data) -> None:
    import json

    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def print_error(err, as_json: bool) -> None:
    """Report an AuthsomeError: Error:/Hint: lines on stderr, and the JSON document on stdout with --json."""
    if as_json:
        emit_json({"error": err.to_dict()})
    print(_paint("Error:", "31", sys.stderr) + " " + err.message, file=sys.stderr)
    if err.hint:
        print(_paint("Hint:", "33", sys.stderr) + " " + err.hint, file=sys.stderr)
    sys.stderr.flush()


def print_bug(exc: BaseException, as_json: bool) -> int:
    """An unexpected failure: say so, never print its message (it could hold anything) or a traceback."""
    tb = exc.__traceback__
    where = "unknown"
    while tb is not None:
        where = f"{os.path.basename(tb.tb_frame.f_code.co_filename)}:{tb.tb_lineno}"
        tb = tb.tb_next
    text = f"authsome hit an unexpected failure ({type(exc).__name__} at {where}). This is a bug."
    hint = f"Please report it at {REPORT_URL}; AUTHSOME_DEBUG=1 shows the traceback (check it for secrets first)."
    if as_json:
        emit_json({"error": {"code": 1, "type": "unexpected", "message": text, "hint": hint}})
    print(f"Error: {text}\nHint: {hint}", file=sys.stderr)
    return 1


def table(rows: list[list[str]], header: list[str]) -> str:
    """Aligned columns for a terminal; tab-free, stable single-space lines when piped."""
    if not sys.stdout.isatty():
        return "".join(" ".join(cell or "-" for cell in row) + "\n" for row in rows)
    allrows = [header, *rows]
    widths = [max(len(r[i] or "-") for r in allrows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(allrows):
        line = "  ".join((cell or "-").ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        lines.append(_paint(line, "1", sys.stdout) if n == 0 else line)
    return "\n".join(lines) + "\n"
