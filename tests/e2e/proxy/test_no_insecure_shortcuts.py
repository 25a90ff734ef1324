"""The suite fails if any test switches TLS verification off or fakes name resolution."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[2]
# Spelled in pieces so this file does not match itself.
FORBIDDEN = [
    "verify" + "=False",
    "curl " + "-k",
    "--" + "insecure",
    "--" + "resolve",
    "NODE_TLS_" + "REJECT_UNAUTHORIZED",
]


def test_no_test_disables_tls_verification():
    offenders = []
    for path in TESTS.rglob("*"):
        if path == Path(__file__).resolve():
            continue  # this file names the forbidden strings
        if not path.is_file() or path.suffix not in {".py", ".js", ".mjs", ".sh", ".json", ".toml", ".cfg", ".ini"}:
            continue
        text = path.read_text(errors="replace")
        offenders += [f"{path.relative_to(TESTS)}: {needle}" for needle in FORBIDDEN if needle in text]
        # curl with -k given as its own argument in an argv list
        if "curl" in text and any(flag in text for flag in ('"' + '-k"', "'" + "-k'")):
            offenders.append(f"{path.relative_to(TESTS)}: curl given the -k flag as an argument")
    assert offenders == []
