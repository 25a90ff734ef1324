"""``{field}`` placeholders in placement templates ("{api_key}", "api", "{email}")."""

from __future__ import annotations

_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyz")
_NAME_CHARS = _NAME_START | frozenset("0123456789_")


def parse_placeholders(template: str) -> set[str] | None:
    """Names used in ``template``, or None when a brace is not part of a ``{name}``."""
    names: set[str] = set()
    i = 0
    while i < len(template):
        ch = template[i]
        if ch == "}":
            return None
        if ch == "{":
            end = template.find("}", i + 1)
            name = template[i + 1 : end] if end != -1 else ""
            if not name or name[0] not in _NAME_START or not all(c in _NAME_CHARS for c in name):
                return None
            names.add(name)
            i = end
        i += 1
    return names


def placeholders(template: str) -> set[str]:
    """Names used in a template already known to be well formed."""
    return parse_placeholders(template) or set()
