"""``run_isolated`` with real bubblewrap: what the child sees, exit codes, signals, failing closed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

WAIT = 20.0


def wait_for(predicate, timeout: float = WAIT, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_exit_status_is_the_childs(isolated_any):
    assert isolated_any.run(["sh", "-c", "exit 7"]).returncode == 7
    assert isolated_any.run(["sh", "-c", "kill -KILL $$"]).returncode == 128 + signal.SIGKILL


def test_command_not_found_is_127_and_nothing_runs(isolated):
    done = isolated.run(["no-such-command-authsome"])
    assert done.returncode == 127
    assert "command not found" in done.stderr


def test_the_child_sees_an_allowlisted_file_system(isolated_any, tmp_path):
    (isolated_any.project / "input.txt").write_text("project data\n")
    host_tmp_file = Path("/tmp") / f"authsome-host-{os.getpid()}-{time.monotonic_ns()}"
    host_tmp_file.write_text("host tmp")
    host_tmp_file.chmod(0o644)
    try:
        script = (
            'cat input.txt; echo written > output.txt; echo "cwd=$(pwd)"; '
            f'echo home: $(ls -A "$HOME"); ls {isolated_any.authsome} 2>&1; ls {host_tmp_file} 2>&1; ls /run 2>&1; '
            "ls /sys 2>&1; id -u; grep -E '^(NoNewPrivs|CapEff|CapBnd):' /proc/self/status; "
            "cat /proc/1/environ | tr '\\0' '\\n' | grep -c TMPDIR"
        )
        done = isolated_any.run(["sh", "-c", script])
    finally:
        host_tmp_file.unlink()
    out = done.stdout
    assert "project data" in out
    assert (isolated_any.project / "output.txt").read_text() == "written\n"  # the cwd is bound read-write
    assert f"cwd={isolated_any.project}" in out
    lines = out.splitlines()
    assert lines[2] == "home: project"  # a fresh $HOME: only the mount point of the project inside it
    assert out.count("No such file or directory") == 4  # the vault, the host's /tmp file, /run, /sys
    assert str(isolated_any.uid) in lines  # the caller's uid, never a fake root
    assert "NoNewPrivs:\t1" in out
    assert "CapEff:\t0000000000000000" in out and "CapBnd:\t0000000000000000" in out
    assert lines[-1] == "0"  # bubblewrap started with the clean environment (no host TMPDIR)


def test_the_network_is_loopback_only(isolated_any):
    done = isolated_any.run(["sh", "-c", "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '"])
    assert done.stdout.split() == ["lo"]


def test_a_bind_that_exposes_the_vault_is_refused_before_anything_runs(isolated_any):
    marker = isolated_any.project / "marker"
    done = isolated_any.run(["touch", str(marker)], binds=[str(isolated_any.user_home)])
    assert done.returncode == 2
    assert "refused" in done.stderr and "Traceback" not in done.stderr
    assert not marker.exists()


def test_running_from_the_home_directory_is_refused(isolated):
    marker = isolated.project / "marker"
    done = isolated.run(["touch", str(marker)], cwd=isolated.user_home)
    assert done.returncode == 2
    assert not marker.exists()


def test_ro_bind_is_read_only_and_bind_is_writable(isolated, tmp_path):
    ro, rw = tmp_path / "ro", tmp_path / "rw"
    ro.mkdir()
    rw.mkdir()
    (ro / "f").write_text("x\n")
    script = f"cat {ro}/f; echo y > {ro}/g 2>/dev/null || echo ro-refused; echo z > {rw}/h && echo rw-ok"
    done = isolated.run(["sh", "-c", script], ro_binds=[str(ro)], binds=[str(rw)])
    assert done.stdout.split() == ["x", "ro-refused", "rw-ok"]
    assert not (ro / "g").exists()
    assert (rw / "h").read_text() == "z\n"


def test_without_bubblewrap_exit_9_and_the_child_never_starts(isolated_any):
    marker = isolated_any.project / "marker"
    done = isolated_any.run(["touch", str(marker)], env={"AUTHSOME_BWRAP": ""})
    assert done.returncode == 9
    assert "bubblewrap" in done.stderr and "not started" in done.stderr
    assert "Traceback" not in done.stderr
    assert not marker.exists()


def test_denied_user_namespaces_exit_9_and_the_child_never_starts(isolated):
    # A user namespace whose limit on further user namespaces is 0: bubblewrap cannot make its own.
    marker = isolated.project / "marker"
    argv = isolated.argv(["touch", str(marker)])
    script = 'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"'
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--", "sh", "-c", script, "sh", *argv],
        cwd=isolated.project,
        env=isolated.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 9, done.stderr
    assert "max_user_namespaces" in done.stderr
    assert not marker.exists()


def test_a_bubblewrap_that_fails_during_setup_is_exit_9(isolated, tmp_path):
    # bubblewrap reports its namespaces, then dies before running the command.
    fake = tmp_path / "bwrap"
    fake.write_text(
        "#!/bin/sh\n"
        'while [ "$1" != "--" ]; do if [ "$1" = "--info-fd" ]; then fd=$2; fi; shift; done\n'
        'eval "echo \'{\\"child-pid\\": $$}\' >&$fd"\n'
        "exit 1\n"
    )
    fake.chmod(0o755)
    marker = isolated.project / "marker"
    done = isolated.run(["touch", str(marker)], env={"AUTHSOME_BWRAP": str(fake)})
    assert done.returncode == 9, done.stderr
    assert not marker.exists()


def test_signals_reach_the_child(isolated_any):
    ready = isolated_any.project / "ready"
    got = isolated_any.project / "got"
    script = f'trap "echo term > {got}; exit 3" TERM; touch {ready}; while :; do sleep 0.05; done'
    proc = isolated_any.spawn(["sh", "-c", script])
    try:
        wait_for(ready.exists, what="the child to start")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT) == 3
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert got.read_text() == "term\n"


def test_the_sandbox_dies_with_authsome(isolated):
    ready = isolated.project / "ready"
    tag = f"authsome-die-with-parent-{time.monotonic_ns()}"
    proc = isolated.spawn(["sh", "-c", f"touch {ready}; while :; do sleep 0.05; done; : {tag}"])
    wait_for(ready.exists, what="the child to start")

    def sandboxed_alive() -> bool:
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if tag.encode() in f.read():
                        return True
            except OSError:
                continue
        return False

    assert sandboxed_alive()
    proc.kill()
    proc.wait()
    wait_for(lambda: not sandboxed_alive(), what="the sandbox to end with authsome")


def test_run_files_are_removed_afterwards(isolated):
    done = isolated.run(["sh", "-c", 'test -s "$SSL_CERT_FILE" && echo bundle-present'])
    assert done.stdout.strip() == "bundle-present"
    assert os.listdir(isolated.tmpdir) == []


@pytest.mark.timeout(120)
def test_interactive_child_gets_ctrl_c_and_window_resizes(isolated_any):
    pexpect = pytest.importorskip("pexpect")
    child_code = (
        "import fcntl, signal, struct, sys, termios, time\n"
        "def size(*_):\n"
        "    rows, cols = struct.unpack('hh', fcntl.ioctl(0, termios.TIOCGWINSZ, b'\\0' * 4))\n"
        "    print(f'size {rows}x{cols}', flush=True)\n"
        "signal.signal(signal.SIGWINCH, size)\n"
        "print('name?', flush=True)\n"
        "print('hello ' + input(), flush=True)\n"
        "print('ready', flush=True)\n"
        "while True:\n"
        "    time.sleep(0.05)\n"
    )
    argv = isolated_any.argv(["/usr/bin/python3", "-c", child_code])
    term = pexpect.spawn(
        argv[0], argv[1:], cwd=str(isolated_any.project), env=isolated_any.env, timeout=WAIT, dimensions=(24, 80)
    )
    try:
        term.expect("name[?]")
        term.sendline("agent")
        term.expect("hello agent")
        term.expect("ready")
        term.setwinsize(40, 100)
        term.expect("size 40x100")
        term.sendintr()
        term.expect(pexpect.EOF)
        term.close()
        assert term.exitstatus == 130
    finally:
        if term.isalive():
            term.terminate(force=True)


def test_an_unknown_egress_policy_is_a_usage_error(isolated):
    marker = isolated.project / "marker"
    done = isolated.run(["touch", str(marker)], egress="everything")
    assert done.returncode == 2
    assert "--egress" in done.stderr
    assert not marker.exists()


def test_host_only_variables_do_not_reach_the_child(isolated):
    env = {
        "XDG_RUNTIME_DIR": str(isolated.tmpdir),
        "SSH_AUTH_SOCK": "/tmp/ssh-agent.sock",
        "DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/0/bus",
        "AUTHSOME_PASSPHRASE": "not-for-the-child",
        "VAULT_TOKEN": "not-for-the-child",
        "KEEP_ME": "kept",
    }
    names = "XDG_RUNTIME_DIR SSH_AUTH_SOCK DBUS_SESSION_BUS_ADDRESS AUTHSOME_PASSPHRASE VAULT_TOKEN TMPDIR KEEP_ME"
    script = f'for n in {names}; do eval "echo $n=\\${{$n-unset}}"; done; cat /proc/1/environ | tr "\\0" "\\n"'
    done = isolated.run(["sh", "-c", script], env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for name in names.split()[:-1]:
        assert f"{name}=unset" in lines
    assert "KEEP_ME=kept" in lines
    assert "not-for-the-child" not in done.stdout  # not even in bubblewrap's own environment (pid 1)
