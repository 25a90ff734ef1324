"""No loss under crash: ``kill -9`` at random moments during login, rotate (``--force``) and remove.

Each trial starts the real CLI on one real home (key-file mode) and kills it, either after a random
delay or right after it announces (through the opt-in ``AUTHSOME_TEST_TRACE_FD`` byte trace of
``SqliteStore._write_locked``) that its write transaction began, so a real share of kills lands
inside the transaction. Afterwards the vault must open, the doctor checks must pass, and every
connection must be wholly old or wholly new; a removed provider wholly present or wholly gone.
Figures are printed (run with ``-s``) and kept in ``FIGURES`` for the report.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import time

import pytest

from authsome.client import Authsome
from tests.adversarial import leakhook
from tests.conftest import AUTHSOME, canary_key

TRIALS = int(os.environ.get("AUTHSOME_CRASH_TRIALS", "150"))  # + 50 refresh trials: 200 in all
TIME_BUDGET = float(os.environ.get("AUTHSOME_CRASH_SECONDS", "150"))
CONNECTIONS = [f"c{i}" for i in range(6)]
REMOVED = "cohere"  # a provider with two connections, removed (and re-created) by some trials
DOCTOR_EVERY = 10
FIGURES: dict = {}

pytestmark = pytest.mark.timeout(TIME_BUDGET + 120)


class Trace:
    """Reads the begin/commit bytes the killed process wrote."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()

    def wait_for_begin(self, proc: subprocess.Popen, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([self.read_fd], [], [], 0.05)
            if ready:
                return os.read(self.read_fd, 16)
        return b""

    def drain(self) -> bytes:
        data = b""
        while select.select([self.read_fd], [], [], 0)[0]:
            chunk = os.read(self.read_fd, 64)
            if not chunk:
                break
            data += chunk
        return data

    def close(self) -> None:
        os.close(self.read_fd)
        os.close(self.write_fd)


def where(trace: bytes, exited: bool) -> str:
    """Where a kill landed relative to the command's last write transaction."""
    if exited:
        return "finished"  # the command completed before the kill arrived
    if not trace:
        return "before"
    return "after" if trace.endswith(b"C") else "inside"


def kill_unless_exited(proc: subprocess.Popen, what: str) -> tuple[bool, str]:
    """SIGKILL ``proc`` unless it already exited; returns whether it had, and its stderr, which is
    scanned for canaries under ``what``."""
    exited = proc.poll() is not None
    if not exited:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    leakhook.SCANNER.record("cli-output", what, stderr)
    return exited, stderr


def stored(home) -> dict[tuple[str, str], str]:
    """Every connection's secret, read through the library (WAL recovery included), after the vault
    checks of ``doctor`` (SQLite integrity, every sealed field opens, no dangling default); the
    whole ``authsome doctor`` runs every ``DOCTOR_EVERY`` trials and at the end."""
    client = Authsome(home)
    try:
        problems = client.store.check()
        assert problems == [], problems
        return {(r.provider, r.connection): r.secret("api_key") for r in client.store.list_connections()}
    finally:
        client.close()


def test_kill9_during_login_rotate_remove(cli, home):
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    assert cli("init", "--key-source", "file").returncode == 0
    expected: dict[tuple[str, str], str] = {}
    for name in ("r0", "r1"):
        key = canary_key()
        cli.login_stdin(REMOVED, key, "--connection", name)
        expected[(REMOVED, name)] = key
    env = dict(cli.env)
    trace = Trace()
    env["AUTHSOME_TEST_TRACE_FD"] = str(trace.write_fd)
    landed = {"before": 0, "inside": 0, "after": 0, "finished": 0}
    by_op: dict[str, int] = {}
    outcomes = {"old": 0, "new": 0}
    started = time.monotonic()
    trials = 0
    durations: list[float] = [0.5]
    try:
        while trials < TRIALS and time.monotonic() - started < TIME_BUDGET:
            trials += 1
            op, argv, key, targets = plan(rng, expected)
            by_op[op] = by_op.get(op, 0) + 1
            t0 = time.monotonic()
            proc = subprocess.Popen(
                [AUTHSOME, *argv],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                pass_fds=(trace.write_fd,),
            )
            if key is not None:
                proc.stdin.write((key + "\n").encode())
            proc.stdin.close()
            if trials % 5 < 3:
                # Aim inside: kill as soon as the write transaction begins, after a tiny random delay.
                seen = trace.wait_for_begin(proc, timeout=30)
                if seen:
                    delay = rng.choice([0, 0, rng.uniform(0, 0.003)])
                    if delay:
                        time.sleep(delay)
            else:
                time.sleep(rng.uniform(0, max(durations) * 1.1))
                seen = b""
            exited, stderr = kill_unless_exited(proc, f"stderr of killed 'authsome {' '.join(argv)}'")
            if exited:
                assert proc.returncode == 0, (argv, proc.returncode, stderr)
                durations.append(time.monotonic() - t0)
            spot = where(seen + trace.drain(), exited)
            landed[spot] += 1
            assert "Traceback" not in stderr and "database is locked" not in stderr, stderr
            check_trial(home, expected, op, key, targets, spot, outcomes)
            if trials % DOCTOR_EVERY == 0:
                doctor = cli("doctor")
                assert doctor.returncode == 0, doctor.stdout
        assert cli("doctor").returncode == 0
    finally:
        trace.close()
    FIGURES.update(
        trials=trials, landed=landed, by_op=by_op, outcomes=outcomes, seconds=round(time.monotonic() - started, 1)
    )
    print(f"\ncrash figures: {FIGURES}")
    assert trials >= min(TRIALS, 20), FIGURES  # a starved machine still runs a meaningful number
    assert landed["inside"] >= max(1, trials // 10), FIGURES


def plan(rng: random.Random, expected: dict):
    """One operation: (name, argv, key piped on stdin, the (provider, connection)s it may change)."""
    removed_present = any(p == REMOVED for p, _ in expected)
    choice = rng.random()
    if choice < 0.15:
        if removed_present:
            return "remove", ["remove", REMOVED], None, [(REMOVED, "r0"), (REMOVED, "r1")]
        name = rng.choice(["r0", "r1"])
        return "login", ["login", REMOVED, "--stdin", "--connection", name], canary_key(), [(REMOVED, name)]
    name = rng.choice(CONNECTIONS)
    if ("openai", name) in expected:
        argv = ["login", "openai", "--stdin", "--force", "--connection", name]
        return "rotate", argv, canary_key(), [("openai", name)]
    return "login", ["login", "openai", "--stdin", "--connection", name], canary_key(), [("openai", name)]


def check_trial(home, expected: dict, op: str, key, targets, spot: str, outcomes: dict) -> None:
    actual = stored(home)
    untouched = {k: v for k, v in expected.items() if k not in targets}
    assert {k: v for k, v in actual.items() if k not in targets} == untouched, (op, spot)
    if op == "remove":
        old = {k: expected[k] for k in targets if k in expected}
        now = {k: actual[k] for k in targets if k in actual}
        assert now in (old, {}), (op, spot, now.keys())  # wholly present or wholly gone
        is_new = now == {} and old != {}
    else:
        (target,) = targets
        assert actual.get(target) in (expected.get(target), key), (op, spot)
        is_new = actual.get(target) == key and key != expected.get(target)
    if spot == "before":
        assert not is_new, (op, spot)  # nothing can change before the transaction began
    if spot in ("after", "finished"):
        assert is_new, (op, spot)  # a committed transaction is durable
    outcomes["new" if is_new else "old"] += 1
    for target in targets:
        expected.pop(target, None)
    expected.update({k: v for k, v in actual.items() if k in targets})
