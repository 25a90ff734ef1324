"""Checks on regular expressions found in provider files.

``key_pattern`` runs on user input, so a pattern with nested unbounded
quantifiers (``(a+)+``), which can backtrack for ages on a crafted key, is
refused. ``regex:`` hosts of the older format are accepted only when they
denote a literal host or a whole-label wildcard, and are converted.
"""

from __future__ import annotations

_MAX_PATTERN_LENGTH = 300
_LITERAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _repeat_length(pattern: str, i: int) -> int:
    """Length of a repeating quantifier (``*``, ``+``, ``{n,}``, ``{n,m}`` with m > 1) at ``i``, else 0."""
    if i >= len(pattern):
        return 0
    if pattern[i] in "*+":
        return 1
    if pattern[i] == "{":
        end = pattern.find("}", i)
        if end == -1:
            return 0
        body = pattern[i + 1 : end]
        low, comma, high = body.partition(",")
        if not low.isdigit() or (high and not high.isdigit()):
            return 0
        if comma and (not high or int(high) > 1):
            return end - i + 1
        if not comma and int(low) > 1:
            return end - i + 1
    return 0


def has_nested_quantifier(pattern: str) -> bool:
    """True when a repeated group itself contains a repeating quantifier."""
    stack = [False]  # per open group: does it contain a repeating quantifier?
    i = 0
    in_class = False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
            i += 1
            continue
        if ch == "[":
            in_class = True
            i += 1
            if pattern[i : i + 1] == "^":
                i += 1
            if pattern[i : i + 1] == "]":
                i += 1
            continue
        if ch == "(":
            stack.append(False)
            if pattern[i + 1 : i + 2] == "?":
                i += 1  # "(?:", "(?P<", "(?=": not a quantifier
        elif ch == ")":
            inner = stack.pop() if len(stack) > 1 else False
            if _repeat_length(pattern, i + 1) and inner:
                return True
            if inner or _repeat_length(pattern, i + 1):
                stack[-1] = True
        elif _repeat_length(pattern, i):
            stack[-1] = True
        i += 1
    return False


def key_pattern_problem(pattern: object) -> str | None:
    """Why ``pattern`` cannot be a key pattern, or None when it is fine."""
    import re

    if not isinstance(pattern, str) or not pattern:
        return "must be a non-empty string"
    if len(pattern) > _MAX_PATTERN_LENGTH:
        return f"is longer than {_MAX_PATTERN_LENGTH} characters"
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        return f"is not a valid regular expression ({exc})"
    if compiled.groups and "\\" in pattern and any(f"\\{d}" in pattern for d in "123456789"):
        return "uses a back-reference"
    if has_nested_quantifier(pattern):
        return "has nested repetition such as '(a+)+', which can take exponential time"
    return None


# Regex forms of "one or more labels followed by a dot" that the older format used.
_LABEL_PREFIXES = (
    ".+\\.",
    ".*\\.",
    "[^.]+\\.",
    "[^.]*\\.",
    "\\w+\\.",
    "[\\w-]+\\.",
    "[\\w.-]+\\.",
)
_CLASS_ATOMS = ("a-z", "A-Z", "0-9", "\\w", "\\d", "\\-", "\\.", "-", "_", ".")


def _is_label_class(prefix: str) -> bool:
    """``[a-z0-9-]+\\.`` style: a character class of host characters, repeated, then a dot."""
    if not prefix.startswith("[") or not (prefix.endswith("]+\\.") or prefix.endswith("]*\\.")):
        return False
    body = prefix[1:-4]
    while body:
        for atom in _CLASS_ATOMS:
            if body.startswith(atom):
                body = body[len(atom) :]
                break
        else:
            return False
    return True


def _literal_host(text: str) -> str | None:
    """Unescape a regex that is a literal host (``api\\.acme\\.example``), else None."""
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in ".-":
            out.append(text[i + 1])
            i += 2
        elif ch in _LITERAL_CHARS or ch == "-":
            out.append(ch)
            i += 1
        else:
            return None  # an unescaped '.', a class, a group, a quantifier: not literal
    return "".join(out)


def convert_regex_host(regex: str) -> str | None:
    """The host pattern a ``regex:`` host denotes, or None when it is not literal or whole-label."""
    from authsome.providers.hosts import normalize_pattern

    body = regex.removeprefix("^").removesuffix("$")
    if body.endswith("\\$"):
        return None
    for prefix in _LABEL_PREFIXES:
        if body.startswith(prefix):
            suffix = _literal_host(body[len(prefix) :])
            return normalize_pattern("*." + suffix) if suffix else None
    for end in ("]+\\.", "]*\\."):
        cut = body.find(end)
        if cut != -1 and _is_label_class(body[: cut + len(end)]):
            suffix = _literal_host(body[cut + len(end) :])
            return normalize_pattern("*." + suffix) if suffix else None
    literal = _literal_host(body)
    return normalize_pattern(literal) if literal else None
