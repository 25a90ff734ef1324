"""Query-parameter and HTTP Basic placements, injected and scrubbed."""

from __future__ import annotations

import base64
import json
import secrets
import sys

import pytest

pytestmark = pytest.mark.e2e
QUERY_KEY = "qk-" + secrets.token_hex(12)
BASIC_KEY = "bk_" + secrets.token_hex(12)
ROUTES = [
    {
        "provider": {
            "schema_version": 2,
            "name": "queryapi",
            "display_name": "Query API",
            "auth_type": "api_key",
            "flow": "api_key",
            "hosts": ["unmatched.example"],
            "api_key": {"query_param": "key", "env_var": "QUERY_API_KEY"},
        },
        "secrets": {"api_key": QUERY_KEY},
    },
    {
        "provider": {
            "schema_version": 2,
            "name": "basicapi",
            "display_name": "Basic API",
            "auth_type": "api_key",
            "flow": "api_key",
            "hosts": ["api.openai.com"],
            "api_key": {"basic_username": "{api_key}", "basic_password": "", "env_var": "BASIC_API_KEY"},
        },
        "secrets": {"api_key": BASIC_KEY},
    },
]


def test_query_and_basic_placements(run_in_netns):
    code = """
        import json, os, requests
        q = requests.get("https://unmatched.example/echo", params={"key": os.environ["QUERY_API_KEY"], "x": "1"})
        b = requests.get("https://api.openai.com/echo")
        print(json.dumps({"q": q.text, "b": b.text, "b_header": b.headers["x-echo-auth"],
                          "env": [os.environ["QUERY_API_KEY"], os.environ["BASIC_API_KEY"]]}))
    """
    result = run_in_netns([sys.executable, "-c", code.replace("\n        ", "\n").strip()], routes=ROUTES)
    assert result.status == 0, result.stderr
    query_record, basic_record = result.records
    assert query_record["target"] == f"/echo?x=1&key={QUERY_KEY}"  # the client's value replaced, not added
    token = base64.b64encode(f"{BASIC_KEY}:".encode()).decode()
    assert basic_record["authorization"] == f"Basic {token}"
    out = json.loads(result.stdout)
    assert out["env"] == ["authsome-proxy-managed", "authsome-proxy-managed"]
    for secret in (QUERY_KEY, BASIC_KEY, token):
        assert secret not in result.stdout and secret not in result.stderr
    assert "[authsome-redacted]" in out["q"] and out["b_header"].startswith("[authsome-redacted]")
    assert [a["provider"] for a in result.audit] == ["queryapi", "basicapi"]
    assert all("?" not in a["path"] for a in result.audit)
