"""Fixtures for the ``run --isolate`` e2e tests.

Each scenario: a real authsome home (key file + SQLite vault) holding a
canary OpenAI key, stored through the real CLI; a private network + mount
namespace (``unshare -m -n``) where test host names resolve to 127.0.0.1 and
the stand-in upstream listens; and ``run_isolated`` started there by
driver.py, either as root or, through ``setpriv``, as the unprivileged user
``authsome-test`` (created by ``.ci/setup.d/60-bubblewrap.sh``).
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
SRC = ROOT / "src"
TEST_USER = "authsome-test"
HOSTS = ["api.openai.com", "api.anthropic.com", "unmatched.example", "rebind.test"]


def site_packages() -> str:
    import h11

    return str(Path(h11.__file__).parent.parent)


def write_pki(directory: Path) -> dict:
    from ..proxy.conftest import _write_pki

    return _write_pki(directory)


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    status: int | None
    error: dict | None
    audit: list[dict]
    seen: dict
    records: list[dict] = field(default_factory=list)


class Scenario:
    """One isolated run: its files, its user, and its namespace process."""

    def __init__(self, base: Path, user: str | None) -> None:
        self.base = base
        self.user = user
        self.canary = "sk-" + secrets.token_urlsafe(30).replace("-", "x")
        self.home = base / "home"
        self.work = base / "work"
        self.outside = base / "out"
        for d in (self.work, self.outside):
            d.mkdir()
        self.unix_socket = self.outside / "agent.sock"
        self.runtime_dir = base / "xdg"  # the user's XDG_RUNTIME_DIR, with a stand-in session bus
        self.runtime_dir.mkdir(mode=0o700)
        self.dbus_socket = self.runtime_dir / "bus"
        self.abstract_name = "authsome-canary-" + secrets.token_hex(6)
        self.service_port = 20000 + secrets.randbelow(30000)
        self.pki = write_pki(base)
        self.records = base / "records.jsonl"
        self.records.write_text("")
        self.result = base / "result.json"
        (base / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n127.0.0.1 " + " ".join(HOSTS) + "\n")
        if user:
            entry = pwd.getpwnam(user)
            for path in [base, *base.rglob("*")]:
                os.chown(path, entry.pw_uid, entry.pw_gid)
            base.chmod(0o755)
        self.env = self._env()
        self._store_canary()

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHSOME_", "PYTEST_"))}
        env["AUTHSOME_HOME"] = str(self.home)
        env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
        env["XDG_RUNTIME_DIR"] = str(self.runtime_dir)
        env["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={self.dbus_socket}"
        if self.user:
            env["PYTHONPATH"] = f"{SRC}{os.pathsep}{site_packages()}"
            env["HOME"] = str(self.base / "userhome")
            env["USER"] = env["LOGNAME"] = self.user
        else:
            env["PYTHONPATH"] = str(SRC)
        return env

    @property
    def python(self) -> str:
        from tests.sandbox.conftest import python_for_user

        return python_for_user() if self.user else sys.executable

    def as_user(self, argv: list[str]) -> list[str]:
        if not self.user:
            return argv
        return ["setpriv", f"--reuid={self.user}", f"--regid={self.user}", "--clear-groups", "--", *argv]

    def _store_canary(self) -> None:
        cli = [self.python, "-c", "from authsome.cli.entry import main; main()"]
        for args, stdin in (
            (["init", "--key-source", "file"], ""),
            (["login", "openai", "--stdin"], self.canary + "\n"),
        ):
            done = subprocess.run(
                self.as_user([*cli, *args]), input=stdin, capture_output=True, text=True, env=self.env, timeout=60
            )
            assert done.returncode == 0, f"authsome {args[0]} failed: {done.stderr}"
        assert (self.home / "vault.key").exists()

    def argv(self, cmd: list[str], **options) -> list[str]:
        config = {
            "cmd": cmd,
            "home": str(self.home),
            "canary": self.canary,
            "upstream_cert": self.pki["cert"],
            "upstream_key": self.pki["key"],
            "extra_ca_bundle": self.pki["ca"],
            "records": str(self.records),
            "result": str(self.result),
            "service_port": self.service_port,
            "unix_socket": str(self.unix_socket),
            "dbus_socket": str(self.dbus_socket),
            "abstract_name": self.abstract_name,
            **options,
        }
        config_path = self.base / "config.json"
        config_path.write_text(json.dumps(config))
        if self.user:
            config_path.chmod(0o644)
        setup = 'mount --bind "$1" /etc/hosts && ip link set lo up'
        if self.user:  # the stand-in upstream listens on 443 and 80 as the test user
            setup += " && echo 0 > /proc/sys/net/ipv4/ip_unprivileged_port_start"
        script = setup + ' && shift && exec "$@"'
        driver = [self.python, str(HERE / "driver.py"), str(config_path)]
        return ["unshare", "-m", "-n", "--", "sh", "-c", script, "sh", str(self.base / "hosts"), *self.as_user(driver)]

    def outcome(self, returncode: int, stdout: str, stderr: str) -> Outcome:
        result = json.loads(self.result.read_text()) if self.result.exists() else {}
        return Outcome(
            returncode=returncode,
            stdout=stdout,
            stderr=stderr,
            status=result.get("status"),
            error=result.get("error"),
            audit=result.get("audit", []),
            seen=result.get("seen", {}),
            records=[json.loads(line) for line in self.records.read_text().splitlines() if line],
        )

    def run(self, cmd: list[str], timeout: float = 180, **options) -> Outcome:
        proc = subprocess.run(
            self.argv(cmd, **options), capture_output=True, text=True, timeout=timeout, env=self.env, cwd=self.work
        )
        return self.outcome(proc.returncode, proc.stdout, proc.stderr)


def _user_base() -> Path:
    base = Path(tempfile.mkdtemp(prefix="authsome-iso-", dir="/tmp"))
    return base


@pytest.fixture(params=["root", "user"])
def scenario(request, tmp_path):
    """A scenario as root and as the unprivileged test user (as .ci/run runs both)."""
    if os.geteuid() != 0:
        pytest.fail("the isolate e2e tests run as root (they create namespaces and switch users)")
    if request.param == "root":
        yield Scenario(tmp_path, None)
        return
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        pytest.fail(f"user {TEST_USER} is missing: run .ci/setup.d/60-bubblewrap.sh")
    base = _user_base()
    try:
        yield Scenario(base, TEST_USER)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def root_scenario(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("the isolate e2e tests run as root")
    return Scenario(tmp_path, None)
