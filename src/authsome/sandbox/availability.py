"""Whether ``run --isolate`` works on this machine, and if not, why (for ``doctor`` and exit 9)."""

from __future__ import annotations

import os
import subprocess
import sys

from authsome.errors import IsolationUnavailableError
from authsome.sandbox.bwrap import NAMESPACE_FLAGS, find_bwrap
from authsome.sandbox.paths import SandboxPlan

INSTALL_HINT = "Install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap)."


def _read_sysctl(name: str) -> str | None:
    try:
        with open(f"/proc/sys/{name}") as f:
            return f.read().strip()
    except OSError:
        return None


def userns_restriction() -> tuple[str, str] | None:
    """A known kernel setting that denies the user namespaces bubblewrap needs: (cause, what to do)."""
    if _read_sysctl("user/max_user_namespaces") == "0":
        return (
            "user namespaces are disabled on this machine (user.max_user_namespaces = 0)",
            "Ask the administrator to allow them: sysctl -w user.max_user_namespaces=15000.",
        )
    if os.geteuid() != 0:
        if _read_sysctl("kernel/unprivileged_userns_clone") == "0":
            return (
                "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)",
                "Ask the administrator to allow them: sysctl -w kernel.unprivileged_userns_clone=1.",
            )
        if _read_sysctl("kernel/apparmor_restrict_unprivileged_userns") == "1":
            return (
                "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1)",
                "Install an AppArmor profile that allows bwrap to use user namespaces "
                "(as Ubuntu does for its own bwrap users), or ask the administrator.",
            )
    return None


def unavailable(detail: str | None = None, bwrap: str | None = None) -> IsolationUnavailableError:
    """The exit-9 error naming the cause: no bubblewrap, denied namespaces, or bubblewrap's own words."""
    if not sys.platform.startswith("linux"):
        return IsolationUnavailableError(
            "authsome run --isolate works on Linux only; the command was not started.",
            hint="Run without --isolate, or on Linux.",
        )
    if bwrap is None:
        return IsolationUnavailableError(
            "authsome run --isolate needs bubblewrap (bwrap), which is not installed; the command was not started.",
            hint=INSTALL_HINT,
        )
    restriction = userns_restriction()
    if restriction is not None:
        cause, todo = restriction
        return IsolationUnavailableError(
            f"authsome run --isolate cannot build its sandbox: {cause}; the command was not started.", hint=todo
        )
    reason = f": {detail}" if detail else ""
    return IsolationUnavailableError(
        f"authsome run --isolate cannot build its sandbox{reason}; the command was not started.",
        hint="`authsome doctor` shows whether --isolate works here; in a container, user namespaces "
        "are often denied by its seccomp or AppArmor profile.",
    )


def _probe_argv(bwrap: str) -> list[str]:
    from authsome.sandbox.bwrap import filesystem_args
    from authsome.sandbox.plan import _system_layout

    plan = SandboxPlan(command=["true"], cwd="/", home_dir="/home/sandbox")
    _system_layout(plan)
    return [bwrap, *NAMESPACE_FLAGS, *filesystem_args(plan), "--chdir", "/", "--", "true"]


def probe(timeout: float = 10.0) -> tuple[bool, str]:
    """(ok, detail): builds a real sandbox running ``true``; never raises."""
    if not sys.platform.startswith("linux"):
        return False, "not Linux: --isolate uses Linux namespaces through bubblewrap"
    bwrap = find_bwrap()
    if bwrap is None:
        return False, f"bubblewrap (bwrap) is not installed. {INSTALL_HINT}"
    try:
        done = subprocess.run(
            _probe_argv(bwrap),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout,
            env={"PATH": "/usr/bin:/bin"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bubblewrap at {bwrap} could not be run ({exc})"
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        err = unavailable(lines[-1] if lines else f"bubblewrap exited with status {done.returncode}", bwrap)
        return False, f"{err.message} {err.hint or ''}".strip()
    try:
        _probe_listener(bwrap)
    except IsolationUnavailableError as exc:
        return False, exc.message
    return True, f"bubblewrap at {bwrap}: user, network, PID, IPC and UTS namespaces work; --isolate is available"


def _probe_listener(bwrap: str) -> None:
    """Also check that a socket can be made inside the sandbox's network namespace."""
    from authsome.sandbox import nslisten
    from authsome.sandbox.launch import Sandbox, SetupFailed

    base = _probe_argv(bwrap)
    split = base.index("--")

    def argv_for(info_fd: int, block_fd: int) -> list[str]:
        return [*base[:split], "--info-fd", str(info_fd), "--block-fd", str(block_fd), *base[split:]]

    sandbox = Sandbox(argv_for, {"PATH": "/usr/bin:/bin"})
    try:
        pid = sandbox.wait_for_namespaces()
        nslisten.listen_in_namespace(pid, 9).close()
        sandbox.release()
        sandbox.wait()
    except SetupFailed as exc:
        raise unavailable(str(exc), bwrap) from None
    finally:
        sandbox.kill()
