"""Two machines sharing a real 3-node OpenBao Raft cluster, through the real CLI.

One test, in phases, on one cluster: the phases must run in this order on the
same nodes (the failover phase kills the leader, the last one stops them all),
and a cluster takes ~15 s to form, so it is not split across xdist workers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import AUTHSOME, canary_key
from tests.e2e.team.test_team_cli import _wait_reading_stdin
from tests.oauth_server.oauth_test_server import pkce_tokens
from tests.team.bao_cluster import RaftCluster
from tests.team.bao_server import agent_policy
from tests.team.fixtures import TeamCLI

WORKER = Path(__file__).parents[2] / "team" / "team_refresh_worker.py"
FAILOVER_SECONDS = 90


@pytest.fixture
def cluster(tmp_path):
    cluster = RaftCluster(tmp_path / "cluster")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def _machine(tmp_path, cluster, name, urls, prefix="team") -> TeamCLI:
    cli = TeamCLI(tmp_path / name, cluster, prefix)
    args = ["init", "--backend", "openbao", "--prefix", prefix, "--stdin"]
    for url in urls:
        args += ["--url", url]
    proc = cli(*args, input=cluster.root_token + "\n")
    assert proc.returncode == 0, proc.stderr
    return cli


def _kv(cluster, path):
    answer = cluster.api("GET", f"secret/data/{path}")
    return answer["data"] if answer else None


def test_two_machines_on_a_raft_cluster(tmp_path, cluster, oauth_server):
    urls = cluster.urls
    machine_a = _machine(tmp_path, cluster, "a", urls)
    machine_b = _machine(tmp_path, cluster, "b", list(reversed(urls)))  # b starts at a standby node

    # 1. Log in on one machine, use it on the other.
    key = canary_key()
    machine_a.login_stdin("openai", key)
    shown = machine_b("get", "openai", "--field", "api_key", "--show-secret")
    assert shown.returncode == 0 and shown.stdout.strip() == key, shown.stderr
    assert json.loads(machine_b("export", "openai", "--format", "json").stdout) == {"OPENAI_API_KEY": key}

    # 2. Concurrent `login --force` from both machines: one wins, the other gets the conflict, nothing lost.
    key_a, key_b = canary_key(), canary_key()
    late = subprocess.Popen(
        [AUTHSOME, "login", "openai", "--force", "--stdin", "--json"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=machine_b.env,
    )  # fmt: skip
    try:
        _wait_reading_stdin(late)  # b has read version 1 and waits for its new key
        machine_a.login_stdin("openai", key_a, "--force")
        out, err = late.communicate(key_b + "\n", timeout=60)
    finally:
        if late.poll() is None:
            late.kill()
    assert late.returncode == 7, err
    assert json.loads(out)["error"]["type"] == "conflict"
    stored = _kv(cluster, "team/openai/default")
    assert stored["data"]["secrets"]["api_key"] == key_a and stored["metadata"]["version"] == 2

    # 3. Eight processes on the two machines race to refresh one rotating OAuth token: one grant.
    oauth_server.configure(access_token_ttl=120)
    tokens = pkce_tokens(oauth_server)
    oauth_server.configure(access_token_ttl=3600)
    seed = subprocess.run(
        [sys.executable, "-c", _SEED, str(machine_a.home), json.dumps(tokens.__dict__ | {"scopes": list(tokens.scopes)})],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert seed.returncode == 0, seed.stderr
    start = tmp_path / "start"
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str((machine_a, machine_b)[i % 2].home), oauth_server.issuer, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(8)
    ]
    time.sleep(1.0)
    start.write_text("go")
    outputs = [w.communicate(timeout=120) for w in workers]
    results = [out.strip() for out, _err in outputs]
    assert all(w.returncode == 0 for w in workers)
    assert len(set(results)) == 1 and not results[0].startswith("ERROR"), "\n".join(map(repr, outputs))
    assert oauth_server.refresh_grants == 1 and not oauth_server.grant_errors()

    # 4. A path-restricted token is refused outside its path.
    cluster.put_policy("agent-openai", agent_policy("team", "openai"))
    agent = _machine(tmp_path, cluster, "agent", urls)
    agent_env = {"VAULT_TOKEN": cluster.create_token(["agent-openai"])}
    assert agent("get", "openai", "--field", "api_key", "--show-secret", env=agent_env).stdout.strip() == key_a
    refused = agent("get", "localauth", "--json", env=agent_env)
    assert refused.returncode in (3, 7), refused.stderr
    assert "Traceback" not in refused.stderr

    # 5. The leader is killed with -9 in the middle of a run of writes.
    acknowledged, failed, killed = {}, 0, threading.Event()
    deadline = time.monotonic() + FAILOVER_SECONDS
    leader = cluster.wait_for_leader()
    n = 0
    while time.monotonic() < deadline:
        n += 1
        name, value = f"w{n}", canary_key()
        proc = machine_a("login", "openai", "--connection", name, "--stdin", input=value + "\n", timeout=60)
        if proc.returncode == 0:
            acknowledged[name] = value
        else:
            assert proc.returncode == 7 and "Traceback" not in proc.stderr, proc.stderr
            failed += 1
        if n == 5:
            leader.kill()
            killed.set()
        if killed.is_set() and len(acknowledged) >= 15:
            break
    assert killed.is_set() and len(acknowledged) >= 15, (len(acknowledged), failed)
    new_leader = cluster.wait_for_leader()
    assert new_leader is not leader
    # Every acknowledged write is in the engine (read from the new leader), and the other machine reads them.
    lost = [
        name
        for name, value in acknowledged.items()
        if (_kv(cluster, f"team/openai/{name}") or {}).get("data", {}).get("secrets", {}).get("api_key") != value
    ]
    print(f"\nfailover: {n} writes attempted, {len(acknowledged)} acknowledged, {failed} refused, {len(lost)} lost")
    assert lost == []
    last = list(acknowledged)[-1]
    shown = machine_b("get", "openai", "--connection", last, "--field", "api_key", "--show-secret")
    assert shown.returncode == 0 and shown.stdout.strip() == acknowledged[last], shown.stderr

    # 6. The engine stopped: a clear exit 7 naming the URLs, no traceback.
    cluster.stop()
    down = machine_b("get", "openai", "--json")
    assert down.returncode == 7, down.stderr
    error = json.loads(down.stdout)["error"]
    assert error["type"] == "store" and all(url in error["message"] for url in urls)
    assert "Traceback" not in down.stderr


_SEED = """
import json, sys
from authsome.home import Home
from authsome.vault.backend import open_store
home = Home(sys.argv[1])
tokens = json.loads(sys.argv[2])
store = open_store(home, home.load_config())
secrets = {"access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"]}
store.put_connection(provider="localauth", connection="default", auth_type="oauth2", flow="pkce", status="connected",
                     secrets=secrets, expires_at=tokens["expires_at"], scopes=tokens["scopes"],
                     metadata={"client_id": "authsome-public"}, expected_version=0)
store.close()
"""
