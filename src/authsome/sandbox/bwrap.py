"""The bubblewrap command line of an isolated run.

Namespaces: user (the caller's uid and gid mapped to themselves, never a
fake root), network (loopback only), PID, IPC, UTS, mount, cgroup where the
kernel has it. ``--disable-userns``: no nested user namespaces.
``--cap-drop ALL``: bubblewrap keeps capabilities for uid 0 unless told, and
CI runs as root. ``--new-session``: no controlling terminal, so no TIOCSTI
into the caller's terminal. ``--die-with-parent``: nothing outlives authsome.
bubblewrap itself sets ``no_new_privs``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from authsome.sandbox.paths import SandboxPlan

NAMESPACE_FLAGS = (
    "--unshare-all",  # ipc, pid, net, uts, cgroup-try (and user-try)
    "--unshare-user",  # required, not "try": --disable-userns depends on it
    "--disable-userns",
    "--die-with-parent",
    "--new-session",
    "--cap-drop",
    "ALL",
)
HOSTNAME = "authsome-sandbox"


def find_bwrap() -> str | None:
    """The bubblewrap executable (``AUTHSOME_BWRAP`` overrides PATH, for tests and odd installs)."""
    override = os.environ.get("AUTHSOME_BWRAP")
    if override is not None:
        return override if override and os.access(override, os.X_OK) else None
    return shutil.which("bwrap")


def _depth(path: str) -> int:
    return len(Path(path).parts)


def filesystem_args(plan: SandboxPlan) -> list[str]:
    """Mount operations, parents before children so nothing is hidden by a later mount."""
    ops: list[tuple[int, int, list[str]]] = []
    for directory in plan.system_dirs:
        ops.append((_depth(directory), 0, ["--ro-bind", directory, directory]))
    for link, target in sorted(plan.links.items()):
        ops.append((_depth(link), 0, ["--symlink", target, link]))
    ops.append((1, 0, ["--proc", "/proc"]))
    ops.append((1, 0, ["--dev", "/dev"]))
    ops.append((1, 1, ["--tmpfs", "/tmp"]))  # noqa: S108 - the sandbox's own private /tmp
    ops.append((_depth(plan.home_dir), 1, ["--tmpfs", plan.home_dir]))
    for mount in plan.mounts:
        ops.append((mount.depth(), 2, [f"--{mount.kind}", mount.source, mount.dest]))
    for path in plan.masked:
        ops.append((99, 3, ["--tmpfs", path]))
    for path in plan.masked_files:
        ops.append((99, 3, ["--ro-bind", "/dev/null", path]))
    ops.sort(key=lambda op: (op[0], op[1]))
    return [arg for _, _, args in ops for arg in args]


def build_argv(
    bwrap: str,
    plan: SandboxPlan,
    *,
    info_fd: int | None = None,
    block_fd: int | None = None,
) -> list[str]:
    """The full ``bwrap ... -- CMD ARGS`` argv (no secret: the environment carries the proxy URL)."""
    argv = [bwrap, *NAMESPACE_FLAGS]
    argv += ["--uid", str(os.getuid()), "--gid", str(os.getgid()), "--hostname", HOSTNAME]
    argv += filesystem_args(plan)
    argv += ["--chdir", plan.cwd]
    if info_fd is not None:
        argv += ["--info-fd", str(info_fd)]
    if block_fd is not None:
        argv += ["--block-fd", str(block_fd)]
    argv += ["--", *plan.command]
    return argv
