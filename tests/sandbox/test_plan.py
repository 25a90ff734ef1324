"""The sandbox's file system: an allowlist, and binds that would expose the vault refused (exit 2)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from authsome.errors import UsageError
from authsome.sandbox.bwrap import NAMESPACE_FLAGS, build_argv, filesystem_args
from authsome.sandbox.paths import command_locations, conflict, protected_paths
from authsome.sandbox.plan import build_plan


@pytest.fixture
def layout(tmp_path):
    """A user's home with the default authsome home in it, and a project directory."""
    user_home = tmp_path / "user"
    authsome_home = user_home / ".authsome"
    authsome_home.mkdir(parents=True)
    (authsome_home / "vault.key").write_text("k")
    project = user_home / "project"
    project.mkdir()
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    env = {"HOME": str(user_home), "XDG_RUNTIME_DIR": str(runtime), "PATH": os.environ["PATH"]}
    return {"user": user_home, "authsome": authsome_home, "project": project, "runtime": runtime, "env": env}


def plan_for(layout, **kw):
    kw.setdefault("cwd", str(layout["project"]))
    return build_plan(["sh", "-c", "true"], "/usr/bin/sh", home=layout["authsome"], environ=layout["env"], **kw)


@pytest.mark.parametrize(
    "option,target",
    [
        ("binds", lambda lay: lay["user"]),  # contains the home: `cd ~` with the default home
        ("binds", lambda lay: lay["authsome"]),  # is the home
        ("ro_binds", lambda lay: lay["authsome"] / "vault.key"),  # the key file
        ("ro_binds", lambda lay: lay["runtime"]),  # XDG_RUNTIME_DIR
        ("binds", lambda lay: Path("/run")),
        ("ro_binds", lambda lay: Path("/")),
    ],
)
def test_binds_that_expose_protected_paths_are_refused_with_exit_2(layout, option, target):
    path = target(layout)
    if not path.exists():
        pytest.skip(f"{path} does not exist here")
    with pytest.raises(UsageError) as err:
        plan_for(layout, **{option: [str(path)]})
    assert err.value.exit_code == 2
    assert "refused" in err.value.message


def test_a_bind_inside_the_home_is_refused(layout):
    inner = layout["authsome"] / "providers"
    inner.mkdir()
    with pytest.raises(UsageError):
        plan_for(layout, binds=[str(inner)])


def test_a_symlink_to_the_home_is_refused_by_its_real_path(layout, tmp_path):
    link = tmp_path / "innocent"
    link.symlink_to(layout["authsome"])
    with pytest.raises(UsageError):
        plan_for(layout, ro_binds=[str(link)])


def test_running_from_the_users_home_is_refused(layout):
    with pytest.raises(UsageError) as err:
        plan_for(layout, cwd=str(layout["user"]))
    assert err.value.exit_code == 2
    assert "current directory" in err.value.message


def test_a_missing_bind_is_a_usage_error(layout, tmp_path):
    with pytest.raises(UsageError):
        plan_for(layout, binds=[str(tmp_path / "missing")])


def test_allowed_binds_keep_their_real_path_and_kind(layout, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    cache = tmp_path / "cache"
    cache.mkdir()
    plan = plan_for(layout, ro_binds=[str(data)], binds=[str(cache)])
    kinds = {(m.kind, m.source, m.dest) for m in plan.mounts}
    assert ("ro-bind", str(data), str(data)) in kinds
    assert ("bind", str(cache), str(cache)) in kinds
    assert ("bind", str(layout["project"]), str(layout["project"])) in kinds
    assert plan.cwd == str(layout["project"])


def test_protected_paths_cover_home_key_runtime_and_run(layout):
    protected = protected_paths(layout["authsome"], layout["env"])
    assert str(layout["authsome"]) in protected
    assert str(layout["authsome"] / "vault.key") in protected
    assert str(layout["runtime"]) in protected
    assert "/run" in protected
    assert conflict("/", protected) == "/"
    assert conflict("/srv/data", protected) is None


def test_filesystem_is_an_allowlist(layout):
    args = filesystem_args(plan_for(layout))
    joined = " ".join(args)
    assert "--ro-bind /usr /usr" in joined
    assert "--proc /proc" in joined and "--dev /dev" in joined and "--tmpfs /tmp" in joined
    assert f"--tmpfs {layout['user']}" in joined  # a fresh, empty $HOME
    assert "/run" not in args and str(layout["authsome"]) not in joined and str(layout["runtime"]) not in joined
    sources = [args[i + 1] for i, a in enumerate(args) if a in ("--bind", "--ro-bind")]
    assert "/" not in sources


def test_mounts_are_ordered_parents_first(layout):
    args = filesystem_args(plan_for(layout))
    # The empty $HOME comes before the project directory bound inside it.
    assert args.index(str(layout["user"])) < args.index(str(layout["project"]))
    assert args.index("/tmp") < len(args)


def test_namespace_flags_drop_everything_also_for_root(layout):
    argv = build_argv("/usr/bin/bwrap", plan_for(layout), info_fd=5, block_fd=6)
    for flag in ("--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session"):
        assert flag in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    assert argv[argv.index("--uid") + 1] == str(os.getuid())
    assert argv[argv.index("--gid") + 1] == str(os.getgid())
    assert argv[argv.index("--info-fd") + 1] == "5" and argv[argv.index("--block-fd") + 1] == "6"
    assert argv[argv.index("--") + 1 :] == ["sh", "-c", "true"]
    assert set(NAMESPACE_FLAGS) <= set(argv)


def test_a_virtualenv_brings_its_base_interpreter(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    base = Path(sys.base_prefix)
    (venv / "pyvenv.cfg").write_text(f"home = {base / 'bin'}\ninclude-system-site-packages = false\n")
    python = venv / "bin" / "python"
    python.symlink_to(Path(sys.executable).resolve())
    locations = command_locations(str(python))
    assert str(venv) in locations
    assert os.path.realpath(base) in locations


def test_the_command_location_beside_the_vault_is_refused(layout):
    tool = layout["authsome"] / "tool"
    tool.write_text("#!/bin/sh\n")
    with pytest.raises(UsageError):
        build_plan(["tool"], str(tool), home=layout["authsome"], environ=layout["env"], cwd=str(layout["project"]))


def test_a_home_inside_a_system_tree_is_masked(tmp_path):
    # An AUTHSOME_HOME under /etc (odd, but possible) is hidden under an empty tmpfs.
    plan = build_plan(["true"], "/usr/bin/true", home="/etc", environ={"PATH": "/usr/bin"}, cwd=str(tmp_path))
    assert "/etc" in plan.masked
    args = filesystem_args(plan)
    pairs = list(zip(args, args[1:], strict=False))
    assert pairs.index(("--tmpfs", "/etc")) > pairs.index(("--ro-bind", "/etc"))
