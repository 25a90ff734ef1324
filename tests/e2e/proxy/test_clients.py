"""Real clients, run as an agent would run them, through ``run_with_proxy``.

Each client is default-constructed, talks to the real host name with
certificate verification on, and holds only the placeholder. The stand-in
upstream records what really arrived.
"""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from .scenario import ANTHROPIC_KEY, NODE_FETCH_STREAM, OPENAI_KEY

pytestmark = pytest.mark.e2e
PLACEHOLDER = "authsome-proxy-managed"
PY = sys.executable


def python_child(code: str) -> list[str]:
    return [PY, "-c", textwrap.dedent(code)]


def assert_no_secret(result) -> None:
    for secret in (OPENAI_KEY, ANTHROPIC_KEY):
        assert secret not in result.stdout
        assert secret not in result.stderr


def assert_injected(result, host="api.openai.com", header="authorization", value=f"Bearer {OPENAI_KEY}"):
    records = result.records_for(host)
    assert records, result.stderr
    assert all(r[header] == value for r in records), records
    assert all(r["sni"] == host for r in records)
    # Matched upstreams are asked for plain bodies, so scrubbing sees the bytes.
    assert all(r["accept-encoding"] == "identity" for r in records)


def assert_incremental(arrivals: list[float], sent: list[float]) -> None:
    """Each chunk arrived before the upstream even sent the next one: nothing was held back."""
    assert len(arrivals) == len(sent) >= 3, (arrivals, sent)
    for i in range(len(sent) - 1):
        assert arrivals[i] < sent[i + 1], (i, arrivals, sent)


def assert_models_then_stream(result, model: str, *injected: str) -> None:
    """An SDK child printed its model list, then a stream's timing and the key it held: the list is the
    upstream's, the stream came incrementally, the key was injected upstream and never seen by the child."""
    assert result.status == 0, result.stderr
    models, timing = result.stdout.splitlines()
    assert json.loads(models) == [model]
    timing = json.loads(timing)
    assert timing["key"] == PLACEHOLDER
    assert_incremental(timing["arrivals"], timing["sent"])
    assert_injected(result, *injected)
    assert_no_secret(result)


def test_curl(run_in_netns):
    result = run_in_netns(["sh", "-c", 'echo "env=$OPENAI_API_KEY"; curl -sS --fail -D - https://api.openai.com/echo'])
    assert result.status == 0, result.stderr
    assert f"env={PLACEHOLDER}" in result.stdout
    assert_injected(result)
    # The echo endpoint reflects the key in its body and a header: scrubbed.
    assert "x-echo-auth: [authsome-redacted]" in result.stdout
    assert '"authorization": "[authsome-redacted]' in result.stdout
    assert_no_secret(result)
    assert result.audit == [
        {
            "provider": "openai",
            "connection": "default",
            "host": "api.openai.com",
            "method": "GET",
            "path": "/echo",
            "status": 200,
        }
    ]


def test_requests_keepalive_and_body(run_in_netns):
    code = """
        import os, requests
        s = requests.Session()
        for _ in range(3):
            print(s.get("https://api.openai.com/v1/models", params={"q": "1"}).json()["data"][0]["id"])
        r = s.post("https://api.openai.com/v1/chat/completions", json={"model": "m", "pad": "x" * 200000})
        print(r.status_code, os.environ["OPENAI_API_KEY"])
    """
    result = run_in_netns(python_child(code))
    assert result.status == 0, result.stderr
    assert result.stdout.split() == ["gpt-test"] * 3 + ["200", PLACEHOLDER]
    assert_injected(result)
    assert [r["method"] for r in result.records] == ["GET"] * 3 + ["POST"]
    assert result.records[-1]["body_length"] > 200000
    assert [a["path"] for a in result.audit] == ["/v1/models"] * 3 + ["/v1/chat/completions"]
    assert_no_secret(result)


def test_httpx_and_client_header_replaced(run_in_netns):
    code = """
        import os, httpx
        with httpx.Client() as c:
            r = c.get("https://api.openai.com/echo", headers={"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"]})
            print(r.json()["headers"]["authorization"])
    """
    result = run_in_netns(python_child(code))
    assert result.status == 0, result.stderr
    assert_injected(result)
    assert result.stdout.startswith("[authsome-redacted]")
    assert_no_secret(result)


def test_aiohttp(run_in_netns):
    # aiohttp reads proxy variables only with trust_env=True (its documented switch).
    code = """
        import asyncio, aiohttp
        async def main():
            async with aiohttp.ClientSession(trust_env=True) as s:
                async with s.get("https://api.openai.com/v1/models") as r:
                    print(r.status, (await r.json())["data"][0]["id"])
        asyncio.run(main())
    """
    result = run_in_netns(python_child(code))
    assert result.status == 0, result.stderr
    assert result.stdout.split() == ["200", "gpt-test"]
    assert_injected(result)


def test_openai_sdk_models_and_stream(run_in_netns):
    code = """
        import json, os, time
        from openai import OpenAI
        client = OpenAI()
        print(json.dumps([m.id for m in client.models.list()]))
        arrivals, sent = [], []
        stream = client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True)
        for chunk in stream:
            arrivals.append(time.time())
            sent.append(float(chunk.choices[0].delta.content))
        print(json.dumps({"arrivals": arrivals, "sent": sent, "key": os.environ["OPENAI_API_KEY"]}))
    """
    result = run_in_netns(python_child(code))
    assert_models_then_stream(result, "gpt-test")


def test_anthropic_sdk_stream(run_in_netns):
    code = """
        import json, os, time
        from anthropic import Anthropic
        client = Anthropic()
        print(json.dumps([m.id for m in client.models.list()]))
        arrivals, sent = [], []
        with client.messages.stream(model="claude-test", max_tokens=10, messages=[{"role": "user", "content": "hi"}]) as stream:
            for text in stream.text_stream:
                arrivals.append(time.time())
                sent.append(float(text))
        print(json.dumps({"arrivals": arrivals, "sent": sent, "key": os.environ["ANTHROPIC_API_KEY"]}))
    """
    result = run_in_netns(python_child(code))
    assert_models_then_stream(result, "claude-test", "api.anthropic.com", "x-api-key", ANTHROPIC_KEY)


def test_requests_chunked_stream(run_in_netns):
    code = """
        import json, time, requests
        arrivals, sent = [], []
        with requests.get("https://api.openai.com/stream", stream=True) as r:
            for line in r.iter_lines():
                arrivals.append(time.time())
                sent.append(float(line.split()[-1]))
        print(json.dumps({"arrivals": arrivals, "sent": sent}))
    """
    result = run_in_netns(python_child(code))
    assert result.status == 0, result.stderr
    timing = json.loads(result.stdout)
    assert_incremental(timing["arrivals"], timing["sent"])
    assert_injected(result)


def test_node_fetch_via_preload(run_in_netns):
    result = run_in_netns(["node", "-e", NODE_FETCH_STREAM])
    assert result.status == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["model"] == "gpt-test"
    assert out["env"] == PLACEHOLDER
    assert_incremental(out["arrivals"], out["sent"])
    assert_injected(result)


def test_websocket_upgrade_is_relayed_after_injection(run_in_netns):
    code = """
        from websockets.sync.client import connect
        with connect("wss://api.openai.com/ws") as ws:
            for text in ("one", "two"):
                ws.send(text)
                print(ws.recv())
    """
    result = run_in_netns(python_child(code))
    assert result.status == 0, result.stderr
    [record] = result.records
    assert record["authorization"] == f"Bearer {OPENAI_KEY}"
    assert record["ws_extensions"] is None  # compression refused so frames can be scrubbed
    # The upstream echoes the credential it got; the child sees it scrubbed.
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and lines[0].endswith("|one") and lines[1].endswith("|two")
    assert all(line.startswith("auth=[authsome-redacted]") for line in lines)
    assert result.audit[0]["status"] == 101
    assert_no_secret(result)


def test_expect_100_continue_is_relayed(run_in_netns, tmp_path):
    body = tmp_path / "body.json"
    body.write_text('{"pad": "' + "x" * 100_000 + '"}')
    result = run_in_netns(
        [
            "curl",
            "-sS",
            "-v",
            "--fail",
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            f"@{body}",
            "-H",
            "Content-Type: application/json",
            "https://api.openai.com/v1/chat/completions",
        ]
    )
    assert result.status == 0, result.stderr
    assert "< HTTP/1.1 100" in result.stderr
    [record] = result.records
    assert record["expected_continue"] and record["body_length"] == body.stat().st_size
    assert_injected(result)


def test_head_and_chunked_upload(run_in_netns, tmp_path):
    body = tmp_path / "upload.bin"
    body.write_bytes(b"z" * 300_000)
    script = (
        "curl -sS --fail -I https://api.openai.com/v1/models | head -1 && "
        f'curl -sS --fail -H "Transfer-Encoding: chunked" --data-binary @{body} https://api.openai.com/upload'
    )
    result = run_in_netns(["sh", "-c", script])
    assert result.status == 0, result.stderr
    assert result.stdout.startswith("HTTP/1.1 200")
    head, upload = result.records
    assert head["method"] == "HEAD" and upload["method"] == "POST"
    assert upload["body_length"] == 300_000
    assert_injected(result)


def test_compressed_reflection_is_decoded_and_scrubbed(run_in_netns):
    result = run_in_netns(["curl", "-sS", "--fail", "-D", "/dev/stderr", "https://api.openai.com/gzip-echo"])
    assert result.status == 0, result.stderr
    body = json.loads(result.stdout)  # plain JSON: the proxy decoded the gzip body
    assert body["echo"].startswith("[authsome-redacted]") and len(body["pad"]) == 100_000
    assert "content-encoding" not in result.stderr.lower()
    assert_no_secret(result)


@pytest.mark.parametrize("path", ["/br-echo", "/gzip-br-echo"])
def test_brotli_and_stacked_reflections_are_decoded_and_scrubbed(run_in_netns, path):
    result = run_in_netns(["curl", "-sS", "--fail", "-D", "/dev/stderr", f"https://api.openai.com{path}"])
    assert result.status == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["echo"].startswith("[authsome-redacted]") and len(body["pad"]) == 100_000
    assert "content-encoding" not in result.stderr.lower()
    assert_no_secret(result)


def test_a_body_in_an_encoding_that_cannot_be_checked_is_refused(run_in_netns):
    result = run_in_netns(["curl", "-sS", "-D", "/dev/stderr", "https://api.openai.com/compress-echo"])
    assert result.status == 0, result.stderr
    assert "\nHTTP/1.1 502 " in result.stderr
    assert result.stdout.startswith("authsome proxy: the upstream sent a compress body that cannot be checked")
    assert_no_secret(result)


def test_request_body_streams_upstream(run_in_netns):
    code = """
        import json, time, requests
        sent = []
        def body():
            for i in range(3):
                if i:
                    time.sleep(0.5)
                sent.append(time.time())
                yield b"part %d " % i * 1000
        r = requests.post("https://api.openai.com/upload", data=body())  # chunked upload
        print(json.dumps({"status": r.status_code, "sent": sent}))
    """
    result = run_in_netns(python_child(code))
    assert result.status == 0, result.stderr
    out = json.loads(result.stdout)
    [record] = result.records
    assert out["status"] == 200 and record["body_length"] == 3 * 7000
    # The first part reached the upstream before the client even produced the second.
    assert record["data_times"][0] < out["sent"][1]
    assert_injected(result)
