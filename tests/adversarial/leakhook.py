"""Session-wide leak watch, wired in by ``tests/conftest.py``.

Every canary made by ``canary_key()`` is registered here; every ``CLI`` call's stdout, stderr and
argv are scanned (except the outputs of ``get --show-secret`` and ``export``, whose job is to print
the secret); a sampler reads ``/proc`` for the argv and environment of every process the tests
spawn while it runs and watches new files in the temp dir; each test's AUTHSOME_HOME (logs, audit
log, vault.db and its WAL) is scanned at teardown. A hit fails the test that was running, naming
the site. ``AUTHSOME_LEAKSCAN=0`` turns the watch off (for debugging only).
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import pytest

from tests.adversarial.leakscan import LeakScanner, ProcessSampler, TempWatcher

SCANNER = LeakScanner()
ENABLED = os.environ.get("AUTHSOME_LEAKSCAN", "1") == "1"
_homes: set[Path] = set()
_homes_lock = threading.Lock()
_state: dict = {}


def register_canary(canary: str) -> None:
    SCANNER.add_canary(canary)


def register_home(path: Path | str) -> None:
    with _homes_lock:
        _homes.add(Path(path))


def prints_secret(args) -> bool:
    """Commands whose documented job is to print the secret."""
    words = [str(a) for a in args]
    command = next((w for w in words if not w.startswith("-")), "")
    return command == "export" or (command == "get" and "--show-secret" in words)


def record_cli(argv, env: dict | None, proc) -> None:
    """Called by ``tests.conftest.CLI`` after every call."""
    if env and env.get("AUTHSOME_HOME"):
        register_home(env["AUTHSOME_HOME"])
    shown = " ".join(str(a) for a in argv[1:])[:120]
    SCANNER.record("process-argv", f"authsome {shown}", "\0".join(str(a) for a in argv))
    if prints_secret(argv[1:]):
        return
    for name in ("stdout", "stderr"):
        data = getattr(proc, name, None)
        if data:
            SCANNER.record("cli-output", f"{name} of 'authsome {shown}'", data)


def _start_session_watch() -> None:
    if _state or not ENABLED:
        return
    basetemp_root = Path(tempfile.gettempdir()) / f"pytest-of-{_user()}"
    watcher = TempWatcher(SCANNER, tempfile.gettempdir(), exclude=[str(basetemp_root)])
    sampler = ProcessSampler(SCANNER)
    original = sampler.sample_once
    ticks = [0]

    def sample_and_poll() -> int:
        count = original()
        ticks[0] += 1
        if ticks[0] % 10 == 0:
            watcher.poll()
        return count

    sampler.sample_once = sample_and_poll
    _state.update(sampler=sampler.start(), watcher=watcher)


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001
        return "unknown"


def scan_homes() -> None:
    with _homes_lock:
        homes = list(_homes)
        _homes.clear()
    for home in homes:
        if home.is_dir():
            SCANNER.scan_tree(home)


def check_now() -> list:
    """Scan what is pending (homes, temp dir) and return the hits found since the last check."""
    if _state:
        _state["sampler"].sample_once()
        _state["watcher"].poll()
    scan_homes()
    return SCANNER.take_hits()


@pytest.fixture(autouse=True)
def leak_watch(request):
    """Fails a test whose run left a canary anywhere the scanner looks."""
    if not ENABLED:
        yield
        return
    _start_session_watch()
    yield
    home = request.node.funcargs.get("home") if hasattr(request.node, "funcargs") else None
    if isinstance(home, (str, Path)):
        register_home(home)
    hits = check_now()
    if hits:
        pytest.fail("secret leak found:\n  " + "\n  ".join(sorted({str(h) for h in hits})), pytrace=False)


# ---- session end: a last sweep, figures, and the verdict (across xdist workers) -------------------
def _stats_dir() -> Path:
    # Workers are children of the xdist controller; without xdist this process is both.
    owner = os.getppid() if os.environ.get("PYTEST_XDIST_WORKER") else os.getpid()
    return Path(tempfile.gettempdir()) / f"authsome-leakscan-{owner}"


def pytest_sessionfinish(session, exitstatus):
    import json

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if ENABLED and _state:  # tests ran in this process: sweep what is still pending
        hits = check_now()
        sampler = _state["sampler"]
        stats = {
            "records": SCANNER.records_scanned,
            "per_site": SCANNER.per_site,
            "canaries": len(SCANNER.canaries),
            "processes": len(sampler.processes_seen),
            "samples": sampler.samples,
            "hits": sorted({str(h) for h in hits}),
        }
        directory = _stats_dir()
        directory.mkdir(mode=0o700, exist_ok=True)
        (directory / f"{worker or 'main'}.json").write_text(json.dumps(stats))
    if worker:
        return
    directory = _stats_dir()
    total = {"records": 0, "per_site": {}, "canaries": 0, "processes": 0, "samples": 0, "hits": []}
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        part = json.loads(path.read_text())
        for key in ("records", "canaries", "processes", "samples"):
            total[key] += part[key]
        for site, n in part["per_site"].items():
            total["per_site"][site] = total["per_site"].get(site, 0) + n
        total["hits"] += part["hits"]
        path.unlink()
    if directory.is_dir():
        directory.rmdir()
    session.config._authsome_leakscan = total
    if total["hits"]:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    total = getattr(config, "_authsome_leakscan", None)
    if not total or not total["records"]:
        return
    sites = ", ".join(f"{site} {n}" for site, n in sorted(total["per_site"].items()))
    terminalreporter.write_line(
        f"leak scan: {total['canaries']} canaries, {total['records']} records scanned ({sites}); "
        f"{total['processes']} processes sampled in {total['samples']} passes; {len(total['hits'])} leak(s) at session end"
    )
    for hit in total["hits"]:
        terminalreporter.write_line(f"  LEAK {hit}", red=True)
