"""Run ``run_isolated`` in its own process (isolated_main.py) against a real authsome home layout."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).parent
MAIN = str(HERE / "isolated_main.py")
TEST_USER = "authsome-test"  # created by .ci/setup.d/60-bubblewrap.sh


def _site_packages() -> str:
    import httptools

    return str(Path(httptools.__file__).parent.parent)


def _others_can_reach(path: str) -> bool:
    parts = Path(path).parents
    return all(os.stat(p).st_mode & 0o001 for p in parts) and bool(os.stat(path).st_mode & 0o001)


def python_for_user() -> str:
    """An interpreter the unprivileged test user can run that loads this venv's packages.

    The venv's own base interpreter when others can reach it (CI: /usr/bin/python3.11), else the
    system python3 of the same version (here the base lives under /root, which is 0700).
    """
    base = os.path.realpath(sys.executable)
    if _others_can_reach(base):
        return base
    system = "/usr/bin/python3"
    done = subprocess.run([system, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
    if done.stdout.strip() != str(tuple(sys.version_info[:2])):
        pytest.fail(f"no Python {sys.version_info[:2]} the test user can run ({base} is private, {system} differs)")
    return system


class Isolated:
    """A user's home with the default authsome home in it, a project directory, and the runner."""

    def __init__(self, tmp_path: Path, user: str | None = None) -> None:
        self.user = user
        self.user_home = tmp_path / "user"
        self.authsome = self.user_home / ".authsome"
        self.authsome.mkdir(parents=True)
        (self.authsome / "vault.key").write_text("not-a-real-key\n")
        self.project = self.user_home / "project"
        self.project.mkdir()
        self.tmpdir = tmp_path / "tmp"
        self.tmpdir.mkdir()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHSOME_", "PYTEST_"))}
        self.env.update(HOME=str(self.user_home), TMPDIR=str(self.tmpdir), PYTHONPATH=str(HERE.parents[1] / "src"))
        if user:
            # The unprivileged user runs the venv's packages from an interpreter it can reach.
            self.env["PYTHONPATH"] += os.pathsep + _site_packages()
            entry = pwd.getpwnam(user)
            self.uid = entry.pw_uid
            for path in [tmp_path, *tmp_path.rglob("*")]:
                os.chown(path, entry.pw_uid, entry.pw_gid)
        else:
            self.uid = os.getuid()

    def argv(self, cmd: list[str], **options) -> list[str]:
        main = [MAIN, json.dumps({"home": str(self.authsome), **options}), "--", *cmd]
        if not self.user:
            return [sys.executable, *main]
        setpriv = ["setpriv", f"--reuid={self.user}", f"--regid={self.user}", "--clear-groups", "--"]
        return [*setpriv, python_for_user(), *main]

    def run(self, cmd: list[str], *, cwd: Path | None = None, env: dict | None = None, timeout: float = 60, **options):
        return subprocess.run(
            self.argv(cmd, **options),
            cwd=cwd or self.project,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def spawn(self, cmd: list[str], **options) -> subprocess.Popen:
        return subprocess.Popen(
            self.argv(cmd, **options),
            cwd=self.project,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture
def isolated(tmp_path) -> Isolated:
    return Isolated(tmp_path)


@pytest.fixture(params=["root", "user"])
def isolated_any(request, tmp_path):
    """As root and as the unprivileged test user."""
    if request.param == "root":
        yield Isolated(tmp_path)
        return
    if os.geteuid() != 0:
        pytest.fail("these tests run as root (CI) and switch to the test user themselves")
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        pytest.fail(f"user {TEST_USER} is missing: run .ci/setup.d/60-bubblewrap.sh")
    base = Path(tempfile.mkdtemp(prefix="authsome-sbx-", dir="/tmp"))
    base.chmod(0o755)
    try:
        yield Isolated(base, TEST_USER)
    finally:
        shutil.rmtree(base, ignore_errors=True)
