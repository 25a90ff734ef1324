"""Node's `https` and `http` modules go through the proxy by way of the preload.

Each script uses Node's own modules with default options (the global agent,
``agent: false``, an agent a library would make), talks to the real host
name with certificate verification on, and holds only the placeholder. The
stand-in upstream records what really arrived.
"""

from __future__ import annotations

import json
import textwrap

import pytest

from .scenario import ANTHROPIC_KEY, OPENAI_KEY

pytestmark = pytest.mark.e2e
PLACEHOLDER = "authsome-proxy-managed"

HELPERS = """
    const http = require('http');
    const https = require('https');
    function get(mod, url, options = {}) {
      return new Promise((resolve, reject) => {
        mod.get(url, options, (res) => {
          let body = '';
          const port = res.socket.remotePort;
          res.setEncoding('utf8');
          res.on('data', (d) => { body += d; });
          res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body, port }));
        }).on('error', reject);
      });
    }
    const fail = (e) => { console.error(e); process.exit(3); };
"""


def node(script: str) -> list[str]:
    return ["node", "-e", textwrap.dedent(HELPERS) + textwrap.dedent(script)]


def assert_no_secret(result) -> None:
    for secret in (OPENAI_KEY, ANTHROPIC_KEY):
        assert secret not in result.stdout
        assert secret not in result.stderr


def test_https_get_with_default_options_gets_the_key_injected(run_in_netns):
    script = """
        (async () => {
          const key = process.env.OPENAI_API_KEY;
          const models = await get(https, 'https://api.openai.com/v1/models');
          // As an SDK does: the placeholder in the header, replaced by the proxy.
          const echo = await get(https, 'https://api.openai.com/echo', { headers: { Authorization: `Bearer ${key}` } });
          const noAgent = await get(https, 'https://api.openai.com/v1/models?agent=false', { agent: false });
          const own = new https.Agent({ keepAlive: true, maxSockets: 1 });
          const ownAgent = await get(https, 'https://api.openai.com/v1/models?agent=own', { agent: own });
          const request = await new Promise((resolve, reject) => {
            const req = https.request({ hostname: 'api.openai.com', path: '/v1/models?request=1', method: 'GET' },
              (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
            req.on('error', reject);
            req.end();
          });
          own.destroy();
          // Pooled keep-alive sockets must not keep the process alive (their tunnels follow unref).
          await new Promise((r) => setImmediate(r));
          const pooled = Object.values(https.globalAgent.freeSockets).flat().length;
          const tcpRefs = process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
          console.log(JSON.stringify({
            key, models: JSON.parse(models.body).data[0].id, status: models.status,
            echo: JSON.parse(echo.body).headers.authorization, echoHeader: echo.headers['x-echo-auth'],
            noAgent: noAgent.status, ownAgent: ownAgent.status, request, pooled, tcpRefs,
          }));
        })().catch(fail);
    """
    result = run_in_netns(node(script))
    assert result.status == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["key"] == PLACEHOLDER
    assert out["models"] == "gpt-test"
    assert out["status"] == out["noAgent"] == out["ownAgent"] == out["request"] == 200
    # The upstream reflected the real key; the script saw it scrubbed.
    assert out["echo"].startswith("[authsome-redacted]") and out["echoHeader"].startswith("[authsome-redacted]")
    assert out["pooled"] >= 1 and out["tcpRefs"] == 0
    records = result.records_for("api.openai.com")
    assert [r["target"] for r in records] == [
        "/v1/models",
        "/echo",
        "/v1/models?agent=false",
        "/v1/models?agent=own",
        "/v1/models?request=1",
    ]
    for record in records:
        assert record["scheme"] == "https" and record["sni"] == "api.openai.com"
        assert record["authorization"] == f"Bearer {OPENAI_KEY}"
        assert record["accept-encoding"] == "identity"  # it went through the proxy
    assert [e["path"] for e in result.audit] == ["/v1/models", "/echo", "/v1/models", "/v1/models", "/v1/models"]
    assert_no_secret(result)


def test_plain_http_to_a_provider_host_gets_no_credential(run_in_netns):
    script = """
        (async () => {
          const key = process.env.OPENAI_API_KEY;
          const provider = await get(http, 'http://api.openai.com/v1/models', { headers: { Authorization: `Bearer ${key}` } });
          const other = await get(http, 'http://unmatched.example/plain');
          console.log(JSON.stringify({ provider: provider.status, other: other.status, body: other.body }));
        })().catch(fail);
    """
    result = run_in_netns(node(script))
    assert result.status == 0, result.stderr
    out = json.loads(result.stdout)
    # The proxy refuses plain HTTP to a provider host; other hosts are relayed unchanged.
    assert out["provider"] == 403
    assert out["other"] == 200 and json.loads(out["body"])["path"] == "/plain"
    [record] = result.records
    assert record["scheme"] == "http" and record["host"] == "unmatched.example"
    assert record["authorization"] is None
    assert record["accept-encoding"] is None  # relayed as sent, no injection machinery
    assert result.audit == []
    assert_no_secret(result)


def test_https_to_an_unmatched_host_is_tunnelled_blind(run_in_netns):
    script = """
        (async () => {
          const r = await get(https, 'https://unmatched.example/x', { headers: { Authorization: 'Bearer mine' } });
          // A host the proxy cannot reach: a clean error from the request, not a hang.
          const refused = await get(https, 'https://nowhere.invalid/').then(() => 'no error', (e) => e.message);
          console.log(JSON.stringify({ status: r.status, body: JSON.parse(r.body), port: r.port ?? null, refused }));
        })().catch(fail);
    """
    result = run_in_netns(node(script))
    assert result.status == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["status"] == 200 and out["body"]["path"] == "/x"
    assert out["port"] != 443  # not a direct connection to the upstream
    assert out["refused"].startswith("authsome proxy refused CONNECT to nowhere.invalid:443: ")
    [record] = result.records
    # A blind tunnel: the client's own header arrives untouched, the test CA verified end to end.
    assert record["sni"] == "unmatched.example" and record["authorization"] == "Bearer mine"
    assert result.audit == []
