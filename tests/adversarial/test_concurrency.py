"""No loss under concurrency: 16 real CLI processes at a time doing mixed logins, rotations, reads,
exports and removes on one home for a bounded time.

Each of 16 lanes runs the installed CLI in a loop and logs every operation it saw acknowledged,
with the time span it was in flight. From those logs alone (never from the final state) the check
derives what the final state may be: for every connection, the effect of one of the acknowledged
operations on it that no other acknowledged operation on it strictly follows (any serial order
consistent with real time ends with one of those). Every acknowledged read must return a value
some acknowledged write could have left there. No "database is locked", no traceback, no exit
code other than the documented ones for the operation.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import threading
import time
from dataclasses import dataclass

import pytest

from authsome.client import Authsome
from tests.adversarial import leakhook
from tests.conftest import AUTHSOME, canary_key

LANES = 16
SECONDS = float(os.environ.get("AUTHSOME_CONCURRENCY_SECONDS", "45"))
MIN_OPS_PER_LANE = 4
OPENAI = [("openai", f"c{i}") for i in range(3)]
COHERE = [("cohere", f"k{i}") for i in range(2)]
FIGURES: dict = {}

pytestmark = pytest.mark.timeout(SECONDS + 180)


@dataclass
class Op:
    lane: int
    kind: str  # write | remove | read
    targets: tuple
    start: float
    end: float
    value: str | None = None  # written (write) or returned (read); None for a read of nothing


def run_lane(lane: int, env: dict, stop: float, log: list, problems: list, counts: dict, lock) -> None:
    rng = random.Random(lane * 7919 + int.from_bytes(os.urandom(2), "big"))
    done = 0
    # At least MIN_OPS_PER_LANE each, so even a starved machine runs a real overlap of writers.
    while time.monotonic() < stop or done < MIN_OPS_PER_LANE:
        done += 1
        roll = rng.random()
        key = canary_key()
        if roll < 0.35:
            provider, name = rng.choice(OPENAI + COHERE)
            force = rng.random() < 0.6
            argv = ["login", provider, "--stdin", "--json", "--connection", name] + (["--force"] if force else [])
            kind, stdin = ("rotate" if force else "login"), key + "\n"
        elif roll < 0.45:
            kind, argv, stdin = "remove", ["remove", "cohere", "--json"], None
        elif roll < 0.75:
            provider, name = rng.choice(OPENAI + COHERE)
            argv = ["get", provider, "--connection", name, "--field", "api_key", "--show-secret", "--json"]
            kind, stdin = "get", None
        else:
            provider, name = rng.choice(OPENAI + COHERE)
            kind, argv, stdin = "export", ["export", provider, "--connection", name, "--format", "json"], None
        t0 = time.monotonic()
        proc = subprocess.run(
            [AUTHSOME, *argv],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            stdin=None if stdin is not None else subprocess.DEVNULL,
        )
        t1 = time.monotonic()
        if not (kind == "get" or kind == "export"):
            leakhook.SCANNER.record("cli-output", f"stdout of 'authsome {' '.join(argv)}'", proc.stdout)
        leakhook.SCANNER.record("cli-output", f"stderr of 'authsome {' '.join(argv)}'", proc.stderr)
        outcome = classify(kind, proc)
        with lock:
            counts[(kind, outcome)] = counts.get((kind, outcome), 0) + 1
            if outcome == "bad":
                problems.append((argv, proc.returncode, proc.stdout[-500:], proc.stderr[-500:]))
                continue
            if outcome != "ok":
                continue
            if kind in ("login", "rotate"):
                result = json.loads(proc.stdout)
                if result["changed"]:
                    log.append(Op(lane, "write", ((provider, name),), t0, t1, key))
            elif kind == "remove":
                log.append(Op(lane, "remove", tuple(COHERE), t0, t1))
            elif kind == "get":
                log.append(Op(lane, "read", ((provider, name),), t0, t1, json.loads(proc.stdout)["value"]))
            else:
                log.append(Op(lane, "read", ((provider, name),), t0, t1, next(iter(json.loads(proc.stdout).values()))))


def classify(kind: str, proc) -> str:
    """ok, or an expected refusal (conflict, nothing there), or bad (anything a user must never see)."""
    text = proc.stdout + proc.stderr
    if "Traceback" in text or "database is locked" in text.lower():
        return "bad"
    if proc.returncode == 0:
        return "ok"
    error_type = None
    try:
        error_type = json.loads(proc.stdout)["error"]["type"]
    except (ValueError, KeyError, TypeError):
        pass
    if proc.returncode == 7 and error_type == "conflict" and kind in ("login", "rotate"):
        return "conflict"  # a concurrent writer changed it first; nothing was written
    if proc.returncode in (3, 5) and kind in ("get", "export", "remove"):
        return "absent"
    return "bad"


def allowed_final(log: list[Op], target) -> set:
    """Values the final state of ``target`` may hold (None: absent), from the acknowledged log."""
    ops = [op for op in log if target in op.targets and op.kind != "read"]
    if not ops:
        return {None}
    # The last op of a real-time-consistent serial order is one no other op strictly follows.
    maximal = [op for op in ops if not any(other.start > op.end for other in ops)]
    return {op.value if op.kind == "write" else None for op in maximal}


def read_ok(log: list[Op], read: Op) -> bool:
    """A read's value was left by an acknowledged change (or the initial absence) that may still
    have been current while the read ran: nothing strictly after it had finished before the read began."""
    target = read.targets[0]
    changes = [op for op in log if target in op.targets and op.kind != "read"]
    initial = Op(-1, "remove", (target,), float("-inf"), float("-inf"))
    for op in [initial, *changes]:
        if op.start >= read.end or (op.value if op.kind == "write" else None) != read.value:
            continue
        if not any(o is not op and o.start > op.end and o.end < read.start for o in changes):
            return True
    return False


def test_sixteen_processes_on_one_vault(cli, home):
    assert cli("init", "--key-source", "file").returncode == 0
    env = dict(cli.env)
    log: list[Op] = []
    problems: list = []
    counts: dict = {}
    lock = threading.Lock()
    stop = time.monotonic() + SECONDS
    lanes = [
        threading.Thread(target=run_lane, args=(i, env, stop, log, problems, counts, lock), daemon=True)
        for i in range(LANES)
    ]
    for lane in lanes:
        lane.start()
    for lane in lanes:
        lane.join(SECONDS + 150)
    assert not any(lane.is_alive() for lane in lanes), "a lane did not finish"
    assert problems == [], problems[:5]

    client = Authsome(home)
    try:
        assert all(c["ok"] for c in client.doctor())
        final = {(r.provider, r.connection): r.secret("api_key") for r in client.store.list_connections()}
    finally:
        client.close()
    for target in OPENAI + COHERE:
        assert final.get(target) in allowed_final(log, target), (target, len(log))
    assert set(final) <= set(OPENAI + COHERE)
    bad_reads = [op for op in log if op.kind == "read" and not read_ok(log, op)]
    assert bad_reads == [], bad_reads[:3]
    assert cli("doctor").returncode == 0

    total = sum(counts.values())
    FIGURES.update(
        processes=LANES,
        seconds=round(time.monotonic() - stop + SECONDS, 1),
        operations=total,
        acknowledged=len(log),
        by_outcome={f"{k}:{o}": n for (k, o), n in sorted(counts.items())},
    )
    print(f"\nconcurrency figures: {FIGURES}")
    assert total >= MIN_OPS_PER_LANE * LANES, FIGURES
    writes = [op for op in log if op.kind == "write"]
    overlapping = sum(1 for a in writes for b in writes if a is not b and a.start < b.end and b.start < a.end)
    assert len(writes) >= 3 and overlapping, FIGURES  # writers really ran at the same time


def test_checker_rejects_a_lost_update_and_a_stale_read():
    # The checker itself must be able to fail: W1 then (strictly later) W2; final W1 is a lost update.
    target = OPENAI[0]
    w1 = Op(0, "write", (target,), 0.0, 1.0, "v1")
    w2 = Op(1, "write", (target,), 2.0, 3.0, "v2")
    assert allowed_final([w1, w2], target) == {"v2"}
    concurrent = Op(2, "write", (target,), 2.5, 4.0, "v3")
    assert allowed_final([w1, w2, concurrent], target) == {"v2", "v3"}
    assert allowed_final([w1, Op(3, "remove", (target,), 1.5, 1.8)], target) == {None}
    assert not read_ok([w1, w2], Op(4, "read", (target,), 3.5, 4.0, "v1"))  # overwritten before it began
    assert read_ok([w1, w2], Op(4, "read", (target,), 2.5, 4.0, "v1"))  # overlapping w2: either value
    assert not read_ok([w1], Op(4, "read", (target,), 1.5, 2.0, None))  # absent after a finished write
    assert read_ok([w1], Op(4, "read", (target,), 0.5, 2.0, None))
    assert not read_ok([w1], Op(4, "read", (target,), 1.5, 2.0, "never-written"))
