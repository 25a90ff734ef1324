"""Build the ``SandboxPlan`` of one isolated run: mounts, masks and the child's start directory."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from authsome.errors import UsageError
from authsome.sandbox.paths import (
    SYSTEM_DIRS,
    SYSTEM_LINKS,
    Mount,
    SandboxPlan,
    _inside,
    _real,
    check_bind,
    command_locations,
    conflict,
    is_system_path,
    protected_paths,
)


def _system_layout(plan: SandboxPlan) -> None:
    for directory in SYSTEM_DIRS:
        if os.path.isdir(directory):
            plan.system_dirs.append(directory)
    for link in SYSTEM_LINKS:
        if os.path.islink(link):
            plan.links[link] = os.readlink(link)
        elif os.path.isdir(link):
            plan.system_dirs.append(link)


def _covered(path: str, mounts: list[Mount], system_dirs: list[str]) -> bool:
    return any(_inside(path, d) for d in system_dirs) or any(_inside(path, m.source) for m in mounts)


def build_plan(
    command: Sequence[str],
    command_path: str,
    *,
    home: str | os.PathLike,
    environ: Mapping[str, str],
    binds: Sequence[str] = (),
    ro_binds: Sequence[str] = (),
    cwd: str | None = None,
    run_files: Sequence[str] = (),
) -> SandboxPlan:
    """The sandbox for ``command``; UsageError (exit 2) for a bind that would expose a protected path.

    ``run_files``: files or directories of this run the child must read (the
    CA bundle's directory, the Node preload), bound read-only at the same path.
    """
    protected = protected_paths(home, environ)
    real_cwd = _real(cwd or os.getcwd())
    guarded = conflict(real_cwd, protected)
    if guarded is not None:
        what = "the root directory" if guarded == "/" else guarded
        raise UsageError(
            f"The current directory {real_cwd} would put {what} inside the sandbox, so --isolate refuses to run here.",
            hint="cd into your project directory (one that does not contain the authsome home) and run again.",
        )
    plan = SandboxPlan(command=list(command), cwd=real_cwd, home_dir=_home_dir(environ))
    _system_layout(plan)

    auto: list[Mount] = []
    for location in command_locations(command_path):
        real = _real(location)
        if is_system_path(real) or _covered(real, auto, plan.system_dirs):
            continue
        if conflict(real, protected) is None:
            auto.append(Mount("ro-bind", real, real))
    resolved_dir = os.path.dirname(_real(command_path))
    if not (is_system_path(resolved_dir) or _covered(resolved_dir, auto, plan.system_dirs)):
        raise UsageError(
            f"The command {command[0]} lives in {resolved_dir}, next to the authsome vault, so it cannot "
            "be made available inside the sandbox.",
            hint="Install the command elsewhere, or move AUTHSOME_HOME.",
        )

    user: list[Mount] = [Mount("bind", real_cwd, real_cwd)]
    for path in ro_binds:
        real = check_bind(path, protected, "--ro-bind")
        user.append(Mount("ro-bind", real, real))
    for path in binds:
        real = check_bind(path, protected, "--bind")
        user.append(Mount("bind", real, real))
    run: list[Mount] = []
    for path in run_files:
        real = _real(path)
        run.append(Mount("ro-bind", real, real))

    # Shallower mounts first, so a deeper one (the cwd inside a venv, say) lies on top.
    plan.mounts = sorted(auto + user + run, key=Mount.depth)
    exposed = plan.system_dirs + [m.source for m in plan.mounts]
    for path in protected:
        if any(_inside(path, tree) for tree in exposed):
            if os.path.isdir(path):
                plan.masked.append(path)
            elif os.path.exists(path):
                plan.masked_files.append(path)
    return plan


def _home_dir(environ: Mapping[str, str]) -> str:
    home = environ.get("HOME") or os.path.expanduser("~")
    return os.path.abspath(home) if home and home != "/" else "/home/sandbox"
