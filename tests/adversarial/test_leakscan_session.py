"""The session-end sweep: a leak that appears after the last test's own check still fails the run."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

INNER = """
import os, secrets, tempfile
import pytest
from tests.adversarial import leakhook

@pytest.fixture(scope="session")
def late_leak():
    yield
    # Runs after the last test's own leak check: only the session-end sweep can see this file.
    canary = "sk-planted" + secrets.token_hex(16)  # not canary_key()'s shape: the outer run ignores it
    leakhook.register_canary(canary)
    directory = os.environ["LATE_LEAK_DIR"]  # named by the outer test, which removes it
    os.mkdir(directory)
    with open(os.path.join(directory, "late.txt"), "w") as fh:
        fh.write(canary)

def test_nothing_wrong_yet(late_leak):
    pass
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["plain", "xdist"])
def test_a_leak_after_the_last_test_fails_the_session(tmp_path, workers):
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(INNER)
    late_dir = Path(tempfile.gettempdir()) / f"authsome-late-leak-{secrets.token_hex(6)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "AUTHSOME_LEAKSCAN"))}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-s",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.adversarial.leakhook",
            "--rootdir",
            str(tmp_path),
            str(test_file),
        ],
        cwd=ROOT,
        # A plain session, not an xdist worker of ours (which leaves the verdict to its controller).
        env=dict(env, LATE_LEAK_DIR=str(late_dir)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    shutil.rmtree(late_dir, ignore_errors=True)
    assert "1 passed" in out, out[-2000:]
    assert proc.returncode == 1, out[-2000:]
    assert "LEAK temp-file" in out and "late.txt" in out, out[-2000:]
