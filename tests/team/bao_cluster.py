"""A real 3-node OpenBao Raft cluster on 127.0.0.1, initialised and unsealed by the test harness.

Node 1 is initialised (one unseal key share) and unsealed; nodes 2 and 3 join it
through ``retry_join`` and are unsealed with the same key. KV v2 is mounted at
``secret/``. Every wait is bounded; ``kill(i)`` is ``kill -9``.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import requests

from tests.processes import stop_process
from tests.team.bao_server import _scrubbed_env, bao_binary, free_port, wait_healthy

READY_SECONDS = 60


class Node:
    def __init__(self, index: int, directory: Path) -> None:
        self.index = index
        self.node_id = f"node{index}"
        self.api_port, self.cluster_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.directory = directory / self.node_id
        self.directory.mkdir(parents=True)
        (self.directory / "raft").mkdir()
        self.proc: subprocess.Popen | None = None
        self._log = None

    def write_config(self, leader_url: str | None) -> Path:
        join = f'  retry_join {{\n    leader_api_addr = "{leader_url}"\n  }}\n' if leader_url else ""
        config = (
            f'storage "raft" {{\n  path = "{self.directory / "raft"}"\n  node_id = "{self.node_id}"\n'
            f"  performance_multiplier = 1\n{join}}}\n"
            f'listener "tcp" {{\n  address = "127.0.0.1:{self.api_port}"\n'
            f'  cluster_address = "127.0.0.1:{self.cluster_port}"\n  tls_disable = true\n}}\n'
            f'api_addr = "{self.url}"\ncluster_addr = "https://127.0.0.1:{self.cluster_port}"\n'
            "disable_mlock = true\n"
        )
        path = self.directory / "config.hcl"
        path.write_text(config)
        return path

    def start(self, leader_url: str | None) -> None:
        config = self.write_config(leader_url)
        self._log = open(self.directory / "server.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [bao_binary(), "server", f"-config={config}"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_scrubbed_env(),
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            stop_process(self.proc)
        if self._log is not None:
            self._log.close()
            self._log = None


class RaftCluster:
    def __init__(self, directory: Path, size: int = 3) -> None:
        self.nodes = [Node(i + 1, directory) for i in range(size)]
        self.root_token = ""
        self.unseal_key = ""

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def start(self) -> RaftCluster:
        first = self.nodes[0]
        first.start(None)
        _wait_listening(first)
        init = _api("PUT", first.url, "sys/init", {"secret_shares": 1, "secret_threshold": 1})
        self.root_token, self.unseal_key = init["root_token"], init["keys_base64"][0]
        _api("PUT", first.url, "sys/unseal", {"key": self.unseal_key})
        wait_healthy(first.url, first.proc, timeout=READY_SECONDS)
        # Promote joined nodes to voters quickly (the default waits 10 s for them to settle).
        _api(
            "POST",
            first.url,
            "sys/storage/raft/autopilot/configuration",
            {"server_stabilization_time": "1s"},
            token=self.root_token,
        )
        for node in self.nodes[1:]:
            node.start(first.url)
            _wait_listening(node)
            self._unseal_joined(node)
        for node in self.nodes[1:]:
            wait_healthy(node.url, node.proc, timeout=READY_SECONDS, standby_ok=True)
        self.wait_for_leader()
        self.api("POST", "sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})
        self.wait_voters(len(self.nodes))
        return self

    def _unseal_joined(self, node: Node) -> None:
        # The node answers sys/unseal once retry_join has fetched the challenge from the leader.
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            answer = _api("PUT", node.url, "sys/unseal", {"key": self.unseal_key}, allow_error=True)
            if answer is not None and answer.get("sealed") is False:
                return
            time.sleep(0.3)
        raise RuntimeError(f"{node.node_id} did not unseal within {READY_SECONDS} s")

    def leader(self) -> Node | None:
        for node in self.nodes:
            if not node.alive():
                continue
            answer = _api("GET", node.url, "sys/leader", allow_error=True)
            if answer and answer.get("is_self"):
                return node
        return None

    def wait_for_leader(self, timeout: float = READY_SECONDS) -> Node:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self.leader()
            if leader is not None:
                return leader
            time.sleep(0.2)
        raise RuntimeError(f"no leader within {timeout:.0f} s")

    def wait_voters(self, count: int, timeout: float = READY_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                config = self.api("GET", "sys/storage/raft/configuration")
                servers = config["data"]["config"]["servers"]
                if sum(1 for s in servers if s.get("voter")) >= count:
                    return
            except (AssertionError, KeyError, TypeError, requests.RequestException):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"the cluster did not reach {count} voters within {timeout:.0f} s")

    def api(self, method: str, path: str, json: dict | None = None, token: str | None = None):
        leader = self.wait_for_leader()
        return _api(method, leader.url, path, json, token=token or self.root_token)

    def create_token(self, policies: list[str]) -> str:
        return self.api("POST", "auth/token/create", {"policies": policies, "ttl": "1h"})["auth"]["client_token"]

    def put_policy(self, name: str, hcl: str) -> None:
        self.api("PUT", f"sys/policies/acl/{name}", {"policy": hcl})

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _wait_listening(node: Node, timeout: float = READY_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not node.alive():
            raise RuntimeError(f"{node.node_id} exited with code {node.proc.returncode}")
        try:
            requests.get(f"{node.url}/v1/sys/health", timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{node.node_id} did not listen within {timeout:.0f} s")


def _api(method, url, path, json=None, token=None, allow_error=False):
    headers = {"X-Vault-Token": token} if token else {}
    try:
        response = requests.request(method, f"{url}/v1/{path}", json=json, headers=headers, timeout=30)
    except requests.RequestException:
        if allow_error:
            return None
        raise
    if response.status_code >= 400:
        if allow_error:
            return None
        raise AssertionError(f"{method} {path} at {url}: HTTP {response.status_code} {response.text[:300]}")
    return response.json() if response.content else None
