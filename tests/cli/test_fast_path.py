"""The fast read paths print exactly what the full click CLI prints, and import nothing heavy."""

import subprocess
import sys

import pytest

from tests.conftest import canary_key

CASES = [
    ["list"],
    ["list", "--json"],
    ["get", "openai", "--field", "status"],
    ["get", "openai", "--field", "status", "--json"],
    ["get", "openai", "-c", "team", "--field", "connection"],
    ["get", "openai", "--connection", "team", "--field", "is_default"],
    ["get", "openai", "--field", "scopes"],
    ["get", "openai", "--field", "created_at"],
    ["get", "openai", "--connection", "nope", "--field", "status"],
    ["get", "anthropic", "--field", "status"],
    ["get", "nosuch", "--field", "status"],
    ["get", "openai", "--field", "api_key"],
    ["get", "openai", "--field", "status", "--bogus"],
]


@pytest.fixture
def populated(cli):
    cli.login_stdin("openai", canary_key())
    cli.login_stdin("openai", canary_key(), "--connection", "team")
    return cli


@pytest.mark.parametrize("args", CASES, ids=lambda a: " ".join(a))
def test_fast_and_full_paths_agree(populated, args):
    fast = populated(*args)
    full = populated(*args, env={"AUTHSOME_NO_FASTPATH": "1"})
    assert (fast.returncode, fast.stdout, fast.stderr) == (full.returncode, full.stdout, full.stderr)


HEAVY = ("click", "httpx", "authlib", "cryptography", "asyncio", "ssl", "keyring", "h11", "authsome.proxy",
         "authsome.flows.refresh", "http.client", "dataclasses")

PROBE = """
import sys
sys.argv = ["authsome"] + sys.argv[1:]
from authsome.cli.entry import main
try:
    main()
except SystemExit:
    pass
print("\\n".join(sorted(sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["get", "openai", "--field", "status"], ["list"], ["list", "--json"]])
def test_hot_paths_import_nothing_heavy(populated, args):
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                          env=populated.env, timeout=60)
    modules = set(proc.stderr.split())
    assert "authsome.cli.fast" in modules  # the fast path really ran
    loaded = sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert loaded == []


def test_metadata_get_imports_no_crypto_or_oauth(populated):
    proc = subprocess.run([sys.executable, "-c", PROBE, "get", "openai"], capture_output=True, text=True,
                          env=populated.env, timeout=60)
    modules = set(proc.stderr.split())
    assert "authsome.client" in modules
    for heavy in ("httpx", "authlib", "cryptography", "asyncio", "authsome.proxy", "authsome.flows.refresh"):
        assert heavy not in modules
