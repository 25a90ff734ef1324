"""The click-free fast path of ``authsome run`` behaves as the click command does, and imports no click.

Each case runs the real installed CLI twice on the same throwaway home: once
as is (fast path) and once with ``AUTHSOME_NO_FASTPATH=1`` (the click
command), and compares what a caller can see.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import AUTHSOME, canary_key
from tests.proxy.tls_helpers import ScriptedUpstream, write_test_pki

NO_FASTPATH = {"AUTHSOME_NO_FASTPATH": "1"}
OK_CLOSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
ENV_DUMP = "import json, os; print(json.dumps(dict(os.environ)))"


def both(cli, *args: str, env: dict | None = None):
    """(fast path, click path) results of the same command line."""
    return cli(*args, env=env), cli(*args, env={**(env or {}), **NO_FASTPATH})


@pytest.fixture
def openai(cli):
    cli.login_stdin("openai", canary_key())
    return cli


# (arguments, expected exit code, a piece of the expected stderr) with openai connected.
CASES = [
    (["--provider", "anthropic", "--", "true"], 5, "Not logged in to anthropic"),
    (["-p", "nosuch", "--", "true"], 3, "Unknown provider: nosuch"),
    (["--provider=openai:nope", "--", "true"], 3, "openai has no connection named 'nope'"),
    (["--provider", "openai:", "--", "true"], 2, "is not NAME or NAME:CONNECTION"),
    (["-p", "openai", "--provider", "openai", "--", "true"], 2, "--provider openai is given twice"),
    (["--", "definitely-not-a-command-xyz"], 127, "command not found: definitely-not-a-command-xyz"),
    (["--", "sh", "-c", "echo out; echo err >&2; exit 3"], 3, "err"),
    (["--", "sh", "-c", "kill -KILL $$"], 128 + 9, ""),
    (["--", "sh", "-c", "kill -TERM $$"], 128 + 15, ""),
    (["-p", "openai", "sh", "-c", "exit 0"], 0, ""),  # no '--': the command starts at the first non-option
    (["--provider", "openai", "--", "sh", "-c", "exit 42", "--json"], 42, ""),  # options after CMD are CMD's
    (["sh", "-c", 'echo "$@"', "sh", "a", "--", "-p", "b"], 0, ""),  # a later '--' belongs to CMD too
]


@pytest.mark.parametrize(("args", "code", "stderr"), [pytest.param(*case, id=" ".join(case[0])) for case in CASES])
def test_fast_and_click_paths_agree(openai, args, code, stderr):
    fast, full = both(openai, "run", *args)
    assert (fast.returncode, fast.stdout, fast.stderr) == (full.returncode, full.stdout, full.stderr)
    assert fast.returncode == code
    assert stderr in fast.stderr


def test_nothing_connected_is_exit_5_on_both_paths(cli):
    fast, full = both(cli, "run", "--", "true")
    assert (fast.returncode, fast.stderr) == (full.returncode, full.stderr)
    assert fast.returncode == 5
    assert "No provider is connected" in fast.stderr and "authsome login openai" in fast.stderr


def test_child_sees_placeholder_and_proxy(openai):
    openai.login_stdin("anthropic", canary_key("sk-ant-"))
    fast, full = both(openai, "run", "--provider", "openai", "--", sys.executable, "-c", ENV_DUMP)
    assert fast.returncode == full.returncode == 0, fast.stderr
    env, full_env = json.loads(fast.stdout), json.loads(full.stdout)
    assert env["OPENAI_API_KEY"] == "authsome-proxy-managed"
    assert "ANTHROPIC_API_KEY" not in env  # --provider selects
    assert env["HTTPS_PROXY"].startswith("http://authsome:") and env["https_proxy"] == env["HTTPS_PROXY"]
    assert sorted(env) == sorted(full_env)  # the same variables on both paths (values hold a per-run password)


def importtime_modules(cli, *args: str, env: dict | None = None) -> set[str]:
    """Every module the authsome process itself imported (``-X importtime`` lines on its stderr)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", AUTHSOME, *args],
        capture_output=True,
        text=True,
        env=dict(cli.env, **(env or {})),
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}


def test_fast_run_path_imports_no_click(openai):
    modules = importtime_modules(openai, "run", "--", "true")
    assert "authsome.cli.fast_run" in modules  # the fast path really ran
    heavy = sorted(m for m in modules if m.split(".")[0] == "click" or m.startswith("authsome.cli.app"))
    assert heavy == []
    # The probe does see click when it is loaded: the click path imports it.
    assert "click" in importtime_modules(openai, "run", "--", "true", env=NO_FASTPATH)


def test_unusual_forms_fall_back_to_click(openai):
    assert "click" in importtime_modules(openai, "run", "--json", "--", "true")


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["--bind", "/tmp", "--", "true"], 2, "need --isolate"),
        (["--help"], 0, "Usage: authsome run"),
        (["-p", "openai"], 2, "Missing argument"),
        (["--"], 2, "Missing argument"),
        (["--json", "--provider", "nosuch", "--", "true"], 3, "Unknown provider"),
    ],
)
def test_other_forms_are_left_to_click(openai, args, code, text):
    fast, full = both(openai, "run", *args)
    assert (fast.returncode, fast.stdout, fast.stderr) == (full.returncode, full.stdout, full.stderr)
    assert fast.returncode == code
    assert text in fast.stdout + fast.stderr


# ---- an injected request is audited (a custom provider for 'localhost', a real TLS upstream) ----------


def _authorizations(heads: list[bytes]) -> list[str | None]:
    """The Authorization header of each request head the upstream received."""
    found = []
    for head in heads:
        lines = head.decode("latin-1").split("\r\n")
        values = [ln.split(":", 1)[1].strip() for ln in lines if ln.lower().startswith("authorization:")]
        found.append(values[0] if values else None)
    return found


# The child ignores NO_PROXY (it lists localhost) and tunnels through the proxy named in HTTPS_PROXY.
CLIENT = """
import base64, http.client, os, ssl, sys, urllib.parse
proxy = urllib.parse.urlsplit(os.environ["HTTPS_PROXY"])
auth = base64.b64encode(f"{proxy.username}:{proxy.password}".encode()).decode()
context = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
conn = http.client.HTTPSConnection(proxy.hostname, proxy.port, context=context, timeout=30)
conn.set_tunnel("localhost", int(sys.argv[1]), headers={"Proxy-Authorization": "Basic " + auth})
conn.request("GET", "/v1/models?secret=no", headers={"Authorization": "Bearer " + os.environ["LOCALTEST_API_KEY"]})
print(conn.getresponse().read().decode())
"""

PROVIDER = {
    "schema_version": 2,
    "name": "localtest",
    "display_name": "Local test",
    "auth_type": "api_key",
    "flow": "api_key",
    "hosts": ["localhost"],
    "api_key": {"header_name": "Authorization", "header_prefix": "Bearer", "env_var": "LOCALTEST_API_KEY"},
}


@pytest.mark.parametrize("path_env", [{}, NO_FASTPATH], ids=["fast", "click"])
def test_injection_is_audited(cli, tmp_path, path_env):
    ca, cert, key = write_test_pki(tmp_path)
    definition = tmp_path / "localtest.json"
    definition.write_text(json.dumps(PROVIDER))
    assert cli("register", str(definition)).returncode == 0
    secret = canary_key()
    cli.login_stdin("localtest", secret)
    upstream = ScriptedUpstream(cert, key, lambda n, head: OK_CLOSE)
    try:
        proc = cli(
            "run",
            "-p",
            "localtest",
            "--",
            sys.executable,
            "-c",
            CLIENT,
            str(upstream.port),
            env={"AUTHSOME_CA_BUNDLE": ca, **path_env},
        )
    finally:
        upstream.close()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
    assert _authorizations(upstream.heads) == [f"Bearer {secret}"]  # the placeholder was replaced by the key
    events = [json.loads(line) for line in (cli.home / "audit.log").read_text().splitlines()]
    injects = [e for e in events if e["event"] == "inject"]
    assert len(injects) == 1
    assert injects[0]["provider"] == "localtest" and injects[0]["connection"] == "default"
    assert injects[0]["path"] == "/v1/models"  # no query string in the log
