"""No loss under crash, token refresh: ``kill -9`` while ``get --show-secret`` refreshes a rotating token.

The real authorization server (tests/oauth_server) issues access tokens that are always inside the
refresh window, so every read refreshes and rotates the refresh token. Each trial kills the reader
at a random moment or right when its write transaction begins (``AUTHSOME_TEST_TRACE_FD``). After
each: the vault is healthy and the stored token pair is wholly old or wholly new. A kill after the
server rotated the refresh token but before the new one was stored strands the connection: it must
then read as ``expired`` (exit 6, with a hint), never as corrupt; such trials are counted, and the
connection is logged in again.
"""

from __future__ import annotations

import os
import random
import subprocess
import time

import pytest

from authsome.client import Authsome
from tests.adversarial.test_crash_kill9 import Trace, kill_unless_exited, where

TRIALS = int(os.environ.get("AUTHSOME_CRASH_REFRESH_TRIALS", "50"))
TIME_BUDGET = float(os.environ.get("AUTHSOME_CRASH_REFRESH_SECONDS", "75"))
CLIENT = ("--client-id", "authsome-public")
READ = ("get", "localauth", "--field", "access_token", "--show-secret")
FIGURES: dict = {}

pytestmark = pytest.mark.timeout(TIME_BUDGET + 180)


def healthy_tokens(home) -> dict[str, str]:
    client = Authsome(home)
    try:
        problems = client.store.check()  # doctor's vault checks; the whole doctor runs at the end
        assert problems == [], problems
        return client.store.get_connection("localauth", "default").secrets()
    finally:
        client.close()


def test_kill9_during_refresh(oauth_cli):
    cli, server = oauth_cli, oauth_cli.server
    server.configure(access_token_ttl=120)  # always inside the 5-minute refresh window
    assert cli.login(*CLIENT).returncode == 0
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    trace = Trace()
    env = cli.full_env(AUTHSOME_TEST_TRACE_FD=str(trace.write_fd))
    landed = {"before": 0, "inside": 0, "after": 0, "finished": 0}
    outcomes = {"old": 0, "new": 0, "stranded_then_expired": 0}
    durations = [1.0]
    started = time.monotonic()
    trials = 0
    try:
        while trials < TRIALS and time.monotonic() - started < TIME_BUDGET:
            trials += 1
            before = healthy_tokens(cli.cli.home)
            t0 = time.monotonic()
            proc = subprocess.Popen(
                [*cli.command(), *READ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                pass_fds=(trace.write_fd,),
            )
            seen = b""
            if trials % 2:  # every other trial aims inside the write transaction
                seen = trace.wait_for_begin(proc, timeout=60)
                if seen and rng.random() < 0.5:
                    time.sleep(rng.uniform(0, 0.003))
            else:
                time.sleep(rng.uniform(0, max(durations) * 1.1))
            exited, stderr = kill_unless_exited(proc, "stderr of a killed refreshing read")
            assert "Traceback" not in stderr, stderr
            if exited:
                assert proc.returncode == 0, stderr
                durations.append(time.monotonic() - t0)
            spot = where(seen + trace.drain(), exited)
            landed[spot] += 1

            after = healthy_tokens(cli.cli.home)
            same = after["access_token"] == before["access_token"]
            assert same == (after["refresh_token"] == before["refresh_token"]), spot  # never half a pair
            if spot in ("after", "finished"):
                assert not same, spot
            if not same:
                outcomes["new"] += 1
                continue
            if server.introspect(before["refresh_token"]).get("active"):
                outcomes["old"] += 1  # killed before the server spent the refresh token: nothing lost
                continue
            # The server rotated, the new pair was never stored: expired with a hint, not corrupt.
            outcomes["stranded_then_expired"] += 1
            read = cli(*READ)
            assert read.returncode == 6, (read.returncode, read.stderr)
            assert "Hint:" in read.stderr and "Traceback" not in read.stderr
            status = cli("get", "localauth", "--field", "status")
            assert status.stdout.strip() == "expired", status.stdout
            assert cli("doctor").returncode == 0
            relogin = cli.login(*CLIENT, "--force")
            assert relogin.returncode == 0, relogin.stderr
        assert cli("doctor").returncode == 0
    finally:
        trace.close()
    FIGURES.update(trials=trials, landed=landed, outcomes=outcomes, seconds=round(time.monotonic() - started, 1))
    print(f"\nrefresh crash figures: {FIGURES}")
    assert trials >= min(TRIALS, 3), FIGURES  # a starved machine still runs a few
    assert landed["inside"] >= 1, FIGURES
