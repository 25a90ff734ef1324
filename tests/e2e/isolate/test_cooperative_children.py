"""Under --isolate, cooperative children still work as real agents run them (issue 6).

curl, Node from outside /usr (its built-in fetch through the preload) and
the openai SDK from a virtual environment each get the real key injected
while they see only the placeholder, and streamed responses still arrive
chunk by chunk (each chunk before the upstream even sent the next).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.e2e.proxy.scenario import NODE_FETCH_STREAM

pytestmark = pytest.mark.e2e

PLACEHOLDER = "authsome-proxy-managed"


def assert_injected(outcome, scenario) -> None:
    records = [r for r in outcome.records if r["host"] == "api.openai.com"]
    assert records, outcome.stderr[-2000:]
    assert all(r["authorization"] == f"Bearer {scenario.canary}" for r in records)
    assert scenario.canary not in outcome.stdout and scenario.canary not in outcome.stderr


def assert_incremental(arrivals: list[float], sent: list[float]) -> None:
    assert len(arrivals) == len(sent) >= 3, (arrivals, sent)
    for i in range(len(sent) - 1):
        assert arrivals[i] < sent[i + 1], (i, arrivals, sent)


def test_curl_gets_the_key_injected(scenario):
    script = 'echo "env=$OPENAI_API_KEY"; curl -sS --fail https://api.openai.com/echo'
    outcome = scenario.run(["sh", "-c", script])
    assert outcome.status == 0, (outcome.error, outcome.stderr[-2000:])
    assert f"env={PLACEHOLDER}" in outcome.stdout
    assert_injected(outcome, scenario)
    assert [e["host"] for e in outcome.audit] == ["api.openai.com"]




def _node_outside_usr(scenario) -> str:
    """The system Node binary, placed in a prefix of its own (as nvm or a tarball install would)."""
    prefix_bin = scenario.base / "node" / "bin"
    prefix_bin.mkdir(parents=True)
    target = prefix_bin / "node"
    try:
        os.link("/usr/bin/node", target)
    except OSError:
        shutil.copy2("/usr/bin/node", target)
    if scenario.user:
        for path in (scenario.base / "node", prefix_bin):
            path.chmod(0o755)
    return str(target)


def test_node_from_outside_usr_fetches_and_streams(scenario):
    node = _node_outside_usr(scenario)
    (scenario.work / "agent.js").write_text(NODE_FETCH_STREAM)
    (scenario.work / "agent.js").chmod(0o644)
    outcome = scenario.run([node, "agent.js"])
    assert outcome.status == 0, (outcome.error, outcome.stderr[-2000:])
    result = json.loads(outcome.stdout)
    assert result["model"] == "gpt-test" and result["env"] == PLACEHOLDER
    assert_incremental(result["arrivals"], result["sent"])
    assert_injected(outcome, scenario)


OPENAI_SCRIPT = """
import json, os, time
import openai
client = openai.OpenAI()
models = [m.id for m in client.models.list()]
arrivals, sent = [], []
stream = client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True)
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        arrivals.append(time.time())
        sent.append(float(chunk.choices[0].delta.content))
print(json.dumps({"models": models, "env": os.environ["OPENAI_API_KEY"], "arrivals": arrivals, "sent": sent}))
"""


def test_openai_sdk_from_a_virtualenv(root_scenario):
    # The test's own virtual environment: its base interpreter lives outside /usr (pyvenv.cfg says where).
    venv_python = Path(sys.prefix) / "bin" / "python"
    assert (Path(sys.prefix) / "pyvenv.cfg").exists(), "the test suite runs from a virtual environment"
    (root_scenario.work / "agent.py").write_text(OPENAI_SCRIPT)
    outcome = root_scenario.run([str(venv_python), "agent.py"])
    assert outcome.status == 0, (outcome.error, outcome.stderr[-2000:])
    result = json.loads(outcome.stdout)
    assert result["models"] == ["gpt-test"] and result["env"] == PLACEHOLDER
    assert_incremental(result["arrivals"], result["sent"])
    assert_injected(outcome, root_scenario)


def test_egress_providers_refuses_unmatched_hosts(root_scenario):
    script = (
        "curl -sS -o /dev/null -w '%{http_connect}\\n' https://unmatched.example/ ; "
        "curl -sS -o /dev/null -w '%{http_code}\\n' https://api.openai.com/v1/models"
    )
    outcome = root_scenario.run(["sh", "-c", script], egress="providers")
    assert outcome.status == 0, outcome.stderr[-2000:]
    # curl reports the proxy's refusal of the CONNECT as 403; the provider host still works.
    assert outcome.stdout.split() == ["403", "200"], outcome.stderr[-1000:]


def test_egress_all_still_refuses_a_name_that_resolves_to_the_host(root_scenario):
    # unmatched.example resolves to 127.0.0.1 in the test's namespace: a host service, refused even
    # with --egress all (tunnels to unmatched external hosts are the proxy's own tests).
    outcome = root_scenario.run(
        ["sh", "-c", "curl -sS -o /dev/null -w '%{http_connect}\\n' https://unmatched.example/"]
    )
    assert outcome.status == 56  # curl: CONNECT tunnel failed
    assert outcome.stdout.split() == ["403"]
