"""Fixtures for the proxy e2e tests: a test PKI and a runner inside ``unshare -m -n``.

Each scenario runs in a fresh private network + mount namespace: loopback
only, and an /etc/hosts bind-mounted over the real one that sends the test
host names (real provider names among them) to 127.0.0.1, where the stand-in
upstream listens. No test traffic can leave the machine.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from .scenario import DEFAULT_ROUTES, HOSTS

HERE = Path(__file__).parent
ROOT = HERE.parents[2]


def _write_pki(directory: Path) -> dict:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "authsome e2e test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOSTS[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in HOSTS]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": directory / "test-ca.pem", "cert": directory / "upstream.pem", "key": directory / "upstream.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return {name: str(path) for name, path in paths.items()}


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> dict:
    return _write_pki(tmp_path_factory.mktemp("pki"))


@dataclass
class RunResult:
    returncode: int
    stdout: str
    stderr: str
    status: int | None
    audit: list[dict]
    records: list[dict]

    def records_for(self, host: str) -> list[dict]:
        return [r for r in self.records if (r["host"] or "").split(":")[0] == host]


class NetnsRun:
    """One scenario: its files, its namespace process, and its outcome."""

    def __init__(self, tmp_path: Path, pki: dict, cmd: list[str], routes: list[dict] | None) -> None:
        hosts = tmp_path / "hosts"
        hosts.write_text("127.0.0.1 localhost\n::1 localhost\n127.0.0.1 " + " ".join(HOSTS) + "\n")
        self.records = tmp_path / "records.jsonl"
        self.records.write_text("")
        self.result = tmp_path / "result.json"
        config = tmp_path / "config.json"
        config.write_text(
            json.dumps(
                {
                    "cmd": cmd,
                    "routes": DEFAULT_ROUTES if routes is None else routes,
                    "upstream_cert": pki["cert"],
                    "upstream_key": pki["key"],
                    "extra_ca_bundle": pki["ca"],
                    "records": str(self.records),
                    "result": str(self.result),
                }
            )
        )
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + self.env.get("PYTHONPATH", "")
        # unshare (no --fork) and sh both exec: the process started is the driver itself.
        script = 'mount --bind "$1" /etc/hosts && ip link set lo up && exec "$2" "$3" "$4"'
        driver = str(HERE / "driver.py")
        self.argv = ["unshare", "-m", "-n", "--", "sh", "-c", script, "sh", str(hosts), sys.executable, driver]
        self.argv.append(str(config))
        self.cwd = tmp_path

    def outcome(self, returncode: int, stdout: str, stderr: str) -> RunResult:
        outcome = json.loads(self.result.read_text()) if self.result.exists() else {"status": None, "audit": []}
        return RunResult(
            returncode=returncode,
            stdout=stdout,
            stderr=stderr,
            status=outcome["status"],
            audit=outcome["audit"],
            records=[json.loads(line) for line in self.records.read_text().splitlines() if line],
        )


@pytest.fixture
def run_in_netns(tmp_path, pki):
    """Run ``cmd`` as the child of ``run_with_proxy`` inside a fresh namespace; wait for the outcome."""

    def run(cmd: list[str], routes: list[dict] | None = None, timeout: float = 120, extra_env=None) -> RunResult:
        scenario = NetnsRun(tmp_path, pki, cmd, routes)
        scenario.env.update(extra_env or {})
        proc = subprocess.run(
            scenario.argv, capture_output=True, text=True, timeout=timeout, env=scenario.env, cwd=tmp_path
        )
        return scenario.outcome(proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture
def spawn_in_netns(tmp_path, pki):
    """Start a scenario without waiting: returns (Popen, NetnsRun); the test ends it."""
    started: list[subprocess.Popen] = []

    def spawn(cmd: list[str], routes: list[dict] | None = None):
        scenario = NetnsRun(tmp_path, pki, cmd, routes)
        proc = subprocess.Popen(
            scenario.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=scenario.env,
            cwd=tmp_path,
            start_new_session=True,  # its own process group: the teardown ends the child too
        )
        started.append(proc)
        return proc, scenario

    yield spawn
    for proc in started:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # a failed test must not leave the child running
        except ProcessLookupError:
            pass
        proc.wait(10)
