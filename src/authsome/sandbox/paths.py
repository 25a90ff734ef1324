"""What the sandbox's file system is made of, and which paths may never be in it.

The mount tree is an allowlist: system directories read-only, the command's
own location, the user's bound directories and the current directory. A
bound path that is, contains or lies inside a protected path (the authsome
home, its key file, ``XDG_RUNTIME_DIR``, ``/run``, ``/``) is refused: binding
``~`` with the default home would otherwise put the vault in the child's reach.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from authsome.errors import UsageError

#: Read-only system directories (when present).
SYSTEM_DIRS = ("/usr", "/etc", "/opt")
#: Top-level links into /usr on merged-/usr systems (real directories elsewhere).
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


@dataclass
class Mount:
    kind: str  # "ro-bind" | "bind"
    source: str
    dest: str

    def depth(self) -> int:
        return len(Path(self.dest).parts)


@dataclass
class SandboxPlan:
    """Everything the bwrap argv is built from (plain data, easy to test)."""

    command: list[str]
    cwd: str
    home_dir: str
    mounts: list[Mount] = field(default_factory=list)
    masked: list[str] = field(default_factory=list)  # protected paths inside an allowed tree: hidden by tmpfs
    masked_files: list[str] = field(default_factory=list)  # protected files hidden by /dev/null
    links: dict[str, str] = field(default_factory=dict)  # /bin -> usr/bin etc.
    system_dirs: list[str] = field(default_factory=list)


def _real(path: str | os.PathLike) -> str:
    return os.path.realpath(os.path.abspath(os.fspath(path)))


def _inside(path: str, parent: str) -> bool:
    """True when ``path`` equals ``parent`` or lies below it (both real, absolute)."""
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def protected_paths(home: str | os.PathLike, environ: Mapping[str, str]) -> list[str]:
    """Real paths the child may never see: the authsome home, its key file, runtime dirs."""
    home_path = Path(home)
    found = [_real(home_path), _real(home_path / "vault.key"), "/run"]
    runtime = environ.get("XDG_RUNTIME_DIR")
    if runtime:
        found.append(_real(runtime))
    out: list[str] = []
    for path in found:
        if path not in out:
            out.append(path)
    return out


def conflict(path: str, protected: Iterable[str]) -> str | None:
    """The protected path ``path`` is, contains or lies inside (or ``/`` itself), else None."""
    if path == "/":
        return "/"
    for guarded in protected:
        if _inside(path, guarded) or _inside(guarded, path):
            return guarded
    return None


def check_bind(path: str | os.PathLike, protected: list[str], option: str) -> str:
    """The real path of a user bind, or UsageError (exit 2) naming why it is refused."""
    real = _real(path)
    if not os.path.exists(real):
        raise UsageError(f"{option} {path}: no such file or directory.", hint="Bind only paths that exist.")
    guarded = conflict(real, protected)
    if guarded is not None:
        what = "the root directory" if guarded == "/" else guarded
        raise UsageError(
            f"{option} {path} would put {what} inside the sandbox (it holds the authsome vault, "
            "its key or host sockets), so it is refused.",
            hint="Bind a narrower directory, e.g. your project directory, or move AUTHSOME_HOME outside it.",
        )
    return real


def resolve_command(argv0: str, environ: Mapping[str, str]) -> str | None:
    """The absolute path of the command as PATH finds it (not following links)."""
    if "/" in argv0:
        return os.path.abspath(argv0) if os.path.exists(argv0) else None
    found = shutil.which(argv0, path=environ.get("PATH", os.defpath))
    return os.path.abspath(found) if found else None


def _venv_base_prefix(venv_root: Path) -> str | None:
    """The base interpreter's prefix named by ``pyvenv.cfg`` (``home = <prefix>/bin``)."""
    try:
        text = (venv_root / "pyvenv.cfg").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "home":
            home_bin = Path(value.strip())
            return _real(home_bin.parent if home_bin.name == "bin" else home_bin)
    return None


def command_locations(command_path: str) -> list[str]:
    """Directories the command needs read-only: its own location and a venv's base interpreter.

    For ``<prefix>/bin/tool`` the whole prefix is wanted (``lib/``, ``share/``
    beside ``bin/``); callers fall back to the narrower directory when the
    prefix would include a protected path.
    """
    wanted: list[str] = []
    for candidate in (os.path.abspath(command_path), _real(command_path)):
        directory = Path(candidate).parent
        venv_root = directory.parent
        if (venv_root / "pyvenv.cfg").is_file():
            wanted.append(str(venv_root))
            base = _venv_base_prefix(venv_root)
            if base:
                wanted.append(base)
        elif directory.name == "bin":
            wanted.append(str(directory.parent))
        wanted.append(str(directory))
    return wanted


def is_system_path(path: str) -> bool:
    return any(_inside(path, d) for d in SYSTEM_DIRS) or any(_inside(path, link) for link in SYSTEM_LINKS)
