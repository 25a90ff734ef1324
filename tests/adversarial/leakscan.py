"""The leak scanner: finds canary secrets (raw, base64 at any alignment, URL-encoded) in recorded data.

A canary is a unique, valid-looking key made by ``tests.conftest.canary_key()``. Tests and hooks
record what could leak one, each under a *site* name (CLI output, a process's argv or environment,
a file in a home or the temp dir, the vault's raw bytes, a form response, an error message); the
scanner reports every record that holds any registered canary in any encoding, naming the site
and where. ``ProcessSampler`` reads ``/proc`` for the argv and environment of a process tree
while it runs. ``tests/adversarial/test_leakscan_selftest.py`` proves each site is seen.
"""

from __future__ import annotations

import base64
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus

# Any canary made by canary_key(), registered in this process or not (another xdist worker's).
RAW_CANARY = re.compile(rb"canary[0-9a-f]{32}")
MAX_FILE_BYTES = 8 * 1024 * 1024
TEMP_FILE_LIMIT = 4 * 1024 * 1024
# authsome names its temp dirs "authsome-*"; "tmp" is Python's default prefix. Other tools' entries
# (a browser profile, another job's checkout) are not authsome's to answer for, and costly to walk.
TEMP_PREFIXES = ("authsome", "tmp")

SITES = (
    "cli-output",
    "process-argv",
    "process-environ",
    "home-file",
    "audit-log",
    "vault-db",
    "temp-file",
    "form-response",
    "error-message",
)


@dataclass(frozen=True)
class Hit:
    site: str
    where: str
    encoding: str

    def __str__(self) -> str:
        return f"{self.site}: {self.where} ({self.encoding})"


def encoded_forms(canary: str) -> list[tuple[str, bytes]]:
    """Byte strings whose presence means the canary leaked: raw, URL-encoded, base64 at 3 alignments."""
    raw = canary.encode()
    forms = [("raw", raw), ("url", quote(canary, safe="").encode()), ("url+", quote_plus(canary).encode())]
    for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
        for shift in range(3):
            # Inside a longer base64 text (e.g. "user:key" in Basic auth) the canary starts at any
            # byte offset: keep only the characters that depend on the canary's bytes alone.
            text = encode(b"\0" * shift + raw).rstrip(b"=")
            core = text[(4 if shift else 0) : -4]
            forms.append((f"{name}@{shift}", core))
    unique: dict[bytes, str] = {}
    for name, value in forms:
        unique.setdefault(value, name)
    return [(name, value) for value, name in unique.items()]


class LeakScanner:
    """Registered canaries plus hits found so far; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._forms: list[tuple[str, bytes]] = []
        self._canaries: set[str] = set()
        self._hits: list[Hit] = []
        self.records_scanned = 0
        self.per_site: dict[str, int] = {}

    def add_canary(self, canary: str) -> None:
        with self._lock:
            if canary not in self._canaries:
                self._canaries.add(canary)
                self._forms.extend(encoded_forms(canary))

    @property
    def canaries(self) -> frozenset[str]:
        return frozenset(self._canaries)

    def find(self, data: bytes | str) -> str | None:
        """The encoding of the first canary found in ``data``, or None."""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        if RAW_CANARY.search(data):
            return "raw"
        with self._lock:
            forms = list(self._forms)
        for name, value in forms:
            if value in data:
                return name
        return None

    def record(self, site: str, where: str, data: bytes | str) -> Hit | None:
        """Scan ``data`` now (nothing is kept but the verdict)."""
        assert site in SITES, site
        encoding = self.find(data)
        with self._lock:
            self.records_scanned += 1
            self.per_site[site] = self.per_site.get(site, 0) + 1
            if encoding is None:
                return None
            hit = Hit(site, where, encoding)
            self._hits.append(hit)
        return hit

    def record_exception(self, exc: BaseException) -> Hit | None:
        import traceback

        text = "".join(traceback.format_exception(exc)) + "\n" + repr(exc) + "\n" + str(exc)
        return self.record("error-message", f"{type(exc).__name__}", text)

    def scan_file(self, path: Path, site: str | None = None) -> Hit | None:
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_FILE_BYTES)
        except OSError:
            return None  # gone (a temp file removed meanwhile) or unreadable (a socket, a fifo)
        return self.record(site or site_of(path), str(path), data)

    def scan_tree(self, root: Path, site: str | None = None, since: float | None = None) -> int:
        """Scan every regular file under ``root`` (modified after ``since`` if given); returns the count."""
        count = 0
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                path = Path(dirpath, name)
                try:
                    st = path.lstat()
                except OSError:
                    continue
                if not path.is_file() or path.is_symlink() or (since is not None and st.st_mtime < since):
                    continue
                self.scan_file(path, site)
                count += 1
        return count

    def take_hits(self) -> list[Hit]:
        with self._lock:
            hits, self._hits = self._hits, []
        return hits


def site_of(path: Path) -> str:
    name = Path(path).name
    if name.startswith("vault.db"):
        return "vault-db"  # the database, its -wal and -shm: raw bytes must hold no plaintext
    if name.startswith("audit.log"):
        return "audit-log"
    return "home-file"


# ---- processes -------------------------------------------------------------------------------
def children_of(pid: int) -> list[int]:
    """Direct children of every thread of ``pid`` (subprocesses may be forked from any thread)."""
    found: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                found.extend(int(p) for p in fh.read().split())
        except OSError:
            continue
    return found


def is_authsome(cmdline: bytes | None) -> bool:
    """An authsome process: the ``authsome`` entry point, ``python -m authsome``, or the sandbox's
    in-namespace entry (``isolated_main.py``), run directly or through an interpreter."""
    if not cmdline:
        return False
    argv = cmdline.split(b"\0")
    names = [os.path.basename(a) for a in argv[:2]]
    if b"authsome" in names or any(n.endswith(b"isolated_main.py") for n in names):
        return True
    return any(a == b"-m" and b.split(b".")[0] == b"authsome" for a, b in zip(argv, argv[1:], strict=False))


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read(MAX_FILE_BYTES)
    except OSError:
        return None


class ProcessSampler:
    """Samples argv and environment of ``root``'s descendants until stopped.

    Every argv is checked. An environment is checked where authsome chose it: in each process whose
    parent is an authsome process. The environment a test gives its own processes (a test of
    ``login --from-env`` must put the key there; a shell that evals ``export``), and what they pass
    on to theirs, is the test's choice. Identical contents are scanned once.
    """

    def __init__(self, scanner: LeakScanner, root: int | None = None, interval: float = 0.02) -> None:
        self.scanner = scanner
        self.root = root or os.getpid()
        self.interval = interval
        self.samples = 0
        self.processes_seen: set[tuple[int, bytes]] = set()
        self._seen_content: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="leakscan-sampler", daemon=True)

    def start(self) -> ProcessSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                count = self.sample_once()
            except Exception:  # noqa: BLE001 - a vanished process mid-read must never stop sampling
                count = 0
            # A browser's dozens of processes: sample less often, to leave the CPU to the tests.
            self._stop.wait(self.interval if count < 8 else self.interval * 5)

    def sample_once(self) -> int:
        """Sample every descendant once; returns how many there were."""
        frontier = [(pid, 1, None) for pid in children_of(self.root)]
        count = 0
        while frontier:
            pid, depth, parent_cmdline = frontier.pop()
            cmdline = self._sample(pid, depth, parent_cmdline)
            count += 1
            frontier.extend((child, depth + 1, cmdline) for child in children_of(pid))
        self.samples += 1
        return count

    def _sample(self, pid: int, depth: int, parent_cmdline: bytes | None) -> bytes | None:
        cmdline = _read(f"/proc/{pid}/cmdline")
        if not cmdline:
            return None  # a zombie or gone
        if cmdline == parent_cmdline:
            # Forked and not yet exec'd (subprocess between fork and exec): still the parent's own
            # memory, environment included; what it execs next is sampled on a later pass.
            return cmdline
        self.processes_seen.add((pid, cmdline))
        shown = cmdline.replace(b"\0", b" ")[:200].decode("utf-8", "replace")
        self._scan_once("process-argv", f"pid {pid}: {shown}", cmdline)
        if depth >= 2 and is_authsome(parent_cmdline):
            environ = _read(f"/proc/{pid}/environ")
            if environ:
                self._scan_once("process-environ", f"pid {pid} (depth {depth}): {shown}", environ)
        return cmdline

    def _scan_once(self, site: str, where: str, data: bytes) -> None:
        key = hash((site, data))
        if key in self._seen_content:
            return
        self._seen_content.add(key)
        self.scanner.record(site, where, data)


class TempWatcher:
    """Scans files that appear in the temp dir during the session under authsome's or Python's
    default prefixes (authsome's own temp files are short-lived, so the sampler calls ``poll``
    while processes run). Pytest's basetemp is excluded: tests write their own inputs there."""

    def __init__(self, scanner: LeakScanner, tempdir: str, exclude: list[str]) -> None:
        self.scanner = scanner
        self.tempdir = tempdir
        self.exclude = {os.path.realpath(p) for p in exclude}
        self.started = time.time() - 1
        self.before = set(self._entries())
        self._scanned: dict[str, float] = {}

    def _entries(self) -> list[str]:
        try:
            return os.listdir(self.tempdir)
        except OSError:
            return []

    def poll(self) -> None:
        for name in self._entries():
            if name in self.before or not name.startswith(TEMP_PREFIXES):
                continue
            path = os.path.join(self.tempdir, name)
            if os.path.realpath(path) in self.exclude:
                continue
            for file in _files_under(path):
                try:
                    st = os.lstat(file)
                except OSError:
                    continue
                mtime = st.st_mtime
                # authsome's temp files are small (a CA bundle); big ones (a browser's cache) are not ours.
                if mtime < self.started or self._scanned.get(file) == mtime or st.st_size > TEMP_FILE_LIMIT:
                    continue
                self._scanned[file] = mtime
                self.scanner.scan_file(Path(file), "temp-file")


def _files_under(path: str) -> list[str]:
    if os.path.isfile(path) and not os.path.islink(path):
        return [path]
    out = []
    for dirpath, _dirs, files in os.walk(path):
        out.extend(os.path.join(dirpath, f) for f in files if not os.path.islink(os.path.join(dirpath, f)))
    return out
