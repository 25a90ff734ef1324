"""A hostile child with a canary key stored tries every channel; none may yield it (issue 6).

Runs as root and, through setpriv, as the unprivileged user. The child
(hostile.py) reports what each channel gave it; this test looks for the
canary (raw, base64, URL-encoded), the vault's data key, and the run CA's
private key in that evidence, counts the channels that yielded any of them,
prints the count, and requires 0. Channels whose success alone breaks the
isolation (a mount, a user namespace, ptrace, TIOCSTI, reaching a host
service) are counted too.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest

HERE = Path(__file__).parent

pytestmark = pytest.mark.e2e


def secret_forms(canary: str, vault_key_b64: bytes) -> list[bytes]:
    forms = [canary.encode(), base64.b64encode(canary.encode()), urllib.parse.quote(canary).encode()]
    forms += [base64.b64encode(f"Bearer {canary}".encode()), vault_key_b64.strip()]
    forms.append(base64.b64decode(vault_key_b64.strip()))
    return forms


def decode_evidence(entry: dict) -> bytes:
    return b"\n".join(base64.b64decode(part) for part in entry["evidence"].split())


def run_ca_keys_found(channels: dict) -> list[str]:
    """Private keys the child found that belong to a CA certificate it was given (the run's CA)."""
    import warnings

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    bundle = decode_evidence(channels.get("ca_bundle", {"evidence": ""}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some system CAs have serial numbers cryptography frowns upon
        certs = x509.load_pem_x509_certificates(bundle) if bundle else []
    public = {
        c.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        for c in certs
    }
    hits = []
    for pem in decode_evidence(channels.get("search_private_keys", {"evidence": ""})).split(b"\n-----BEGIN"):
        pem = pem if pem.startswith(b"-----BEGIN") else b"-----BEGIN" + pem
        try:
            key = serialization.load_pem_private_key(pem.strip(), password=None)
        except (ValueError, TypeError):
            continue
        der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if der in public:
            hits.append("run CA private key")
    return hits


def yielded(channels: dict, forms: list[bytes]) -> dict[str, str]:
    """channel -> why it counts as having yielded the secret or broken the isolation."""
    found = {}
    for name, entry in channels.items():
        evidence = decode_evidence(entry)
        if any(form and form in evidence for form in forms):
            found[name] = "yielded the canary or the vault key"
        elif entry["breach"]:
            found[name] = "succeeded: " + "; ".join(entry["notes"][:3])
    for hit in run_ca_keys_found(channels):
        found["run_ca_key"] = hit
    return found


def test_detector_finds_a_planted_canary():
    # The evaluation must be able to fail: a report that holds the canary is counted.
    canary, key = "sk-" + "A" * 40, base64.b64encode(b"k" * 32)
    channels = {
        "clean": {"evidence": base64.b64encode(b"authsome-proxy-managed").decode(), "breach": False, "notes": []},
        "leak": {
            "evidence": base64.b64encode(b"x=" + base64.b64encode(canary.encode())).decode(),
            "breach": False,
            "notes": [],
        },
        "mounted": {"evidence": "", "breach": True, "notes": ["mount -> 0"]},
    }
    assert set(yielded(channels, secret_forms(canary, key))) == {"leak", "mounted"}


def test_hostile_child_gets_nothing(scenario, capsys):
    work = scenario.work
    shutil.copy(HERE / "hostile.py", work / "hostile.py")
    report_path = work / "report.json"
    child_config = {
        "path": str(work / "child.json"),
        "home": str(scenario.home),
        "service_port": scenario.service_port,
        "unix_socket": str(scenario.unix_socket),
        "abstract_name": scenario.abstract_name,
        "dbus_path": str(scenario.dbus_socket),
    }
    if scenario.user:
        os.chown(work / "hostile.py", *_ids(scenario.user))
    # authsome runs on a terminal that is its controlling terminal, as at a shell prompt, and the
    # child's stdin is that terminal: TIOCSTI has a real target.
    controller, terminal = os.openpty()
    try:
        proc = subprocess.run(
            scenario.argv(["/usr/bin/python3", "hostile.py", "child.json", "report.json"], child_config=child_config),
            stdin=terminal,
            start_new_session=True,
            preexec_fn=_take_controlling_terminal,
            capture_output=True,
            text=True,
            timeout=240,
            env=scenario.env,
            cwd=work,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    outcome = scenario.outcome(proc.returncode, proc.stdout, proc.stderr)
    assert outcome.status == 0, (outcome.error, proc.stderr[-2000:])
    channels = json.loads(report_path.read_text())
    assert "errors" not in channels, channels.get("errors")

    forms = secret_forms(scenario.canary, (scenario.home / "vault.key").read_bytes())
    found = yielded(channels, forms)
    reached = {name: count for name, count in outcome.seen.items() if count}
    for name in reached:
        found[f"host_service_{name}"] = f"the host's {name} listener saw {reached[name]} connection(s)"
    who = scenario.user or "root"
    with capsys.disabled():
        print(
            f"\nhostile child ({who}): {len(channels)} channels tried, {len(found)} yielded the canary "
            f"or broke isolation: {found or 'none'}"
        )

    # The run was real: the upstream got the canary through the proxy, and the child saw its placeholder.
    assert any(scenario.canary in (r.get("authorization") or "") for r in outcome.records)
    assert b"authsome-proxy-managed" in decode_evidence(channels["own_environment"])
    assert decode_evidence(channels["ca_bundle"]).count(b"BEGIN CERTIFICATE") >= 2
    expected = {
        "vault_by_path",
        "proc1_root",
        "broker_root",
        "broker_environ",
        "broker_fd",
        "broker_mem",
        "search_vault_files",
        "direct_tcp",
        "direct_ipv6",
        "direct_udp",
        "host_unix_socket",
        "abstract_socket",
        "proxy_without_credentials",
        "proxy_to_host_service",
        "proxy_plain_http_to_host",
        "proxy_reflection",
        "mount",
        "user_namespace",
        "ptrace",
        "tiocsti",
    }
    assert expected <= set(channels)
    assert found == {}


def _take_controlling_terminal() -> None:
    import fcntl
    import termios

    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid
