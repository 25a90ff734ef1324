"""Stopping the helper servers the tests start (OpenBao, the OAuth test server)."""

from __future__ import annotations

import subprocess


def stop_process(proc: subprocess.Popen) -> None:
    """Stop ``proc`` if it still runs: SIGTERM, then SIGKILL if it is not gone within 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
