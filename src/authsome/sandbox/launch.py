"""Starting bubblewrap held at its gate, releasing it, and talking to the child inside.

bubblewrap is started with ``--info-fd`` (it reports the host pid of the
sandbox's init once the namespaces exist) and ``--block-fd`` (it waits, fully
set up, before running the command). authsome prepares the proxy in between,
then opens the gate. A copy of the gate's read end is kept: if bubblewrap
ends and the byte we wrote is still unread, bubblewrap failed during setup
and the command never ran (exit 9, not the command's status).

The command has no controlling terminal (``--new-session``) and bubblewrap
forwards no signals, so authsome forwards INT, TERM, HUP, QUIT, WINCH (and
USR1/2) to the command's host pid: the child of the sandbox's init whose pid
inside the namespace is 2.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import threading
import time
from contextlib import contextmanager

FORWARDED_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGWINCH", "SIGUSR1", "SIGUSR2")
_TERMINATING = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT})
_INFO_TIMEOUT = 10.0
_COMMAND_PID_WAIT = 2.0


class SetupFailed(Exception):
    """bubblewrap ended before the command could run."""


class Sandbox:
    """One bubblewrap process from start to exit."""

    def __init__(self, argv_for, env: dict[str, str]) -> None:
        """``argv_for(info_fd, block_fd)`` returns the argv using those descriptors."""
        info_r, info_w = os.pipe()
        gate_r, gate_w = os.pipe()
        self._info_r, self._gate_w = info_r, gate_w
        self._gate_r = os.dup(gate_r)  # our own copy, to tell afterwards whether bubblewrap read the gate
        os.set_inheritable(self._gate_r, False)
        try:
            self.process = subprocess.Popen(
                argv_for(info_w, gate_r),
                env=env,
                pass_fds=(info_w, gate_r),
                process_group=0,  # the terminal's Ctrl-C reaches authsome, which forwards it
            )
        except OSError:
            for fd in (info_r, gate_w, self._gate_r):
                os.close(fd)
            raise
        finally:
            os.close(info_w)
            os.close(gate_r)
        self.init_pid: int | None = None
        self.released = False
        self.interrupted: int | None = None  # a terminating signal that came before the command ran

    def wait_for_namespaces(self) -> int:
        """The host pid of the sandbox's init, once bubblewrap made the namespaces."""
        data = b""
        deadline = time.monotonic() + _INFO_TIMEOUT
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SetupFailed("bubblewrap did not report its sandbox in time")
            ready, _, _ = select.select([self._info_r], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self._info_r, 4096)
            if not chunk:
                break
            data += chunk
        os.close(self._info_r)
        self._info_r = -1
        try:
            self.init_pid = int(json.loads(data)["child-pid"])
        except (ValueError, KeyError, TypeError):
            raise SetupFailed("bubblewrap could not create the sandbox") from None
        return self.init_pid

    def release(self) -> None:
        """Let the command run."""
        try:
            os.write(self._gate_w, b"1")
        except OSError:
            pass
        os.close(self._gate_w)
        self._gate_w = -1
        self.released = True

    def wait(self) -> int:
        """bubblewrap's exit status; SetupFailed when it ended without ever running the command."""
        from authsome.child_wait import wait_child

        returncode = wait_child(self.process)
        gate_unread = self._gate_unread()
        if not self.released or gate_unread:
            raise SetupFailed(f"bubblewrap failed while setting up the sandbox (status {returncode})")
        return returncode

    def _gate_unread(self) -> bool:
        if self._gate_r < 0:
            return False
        os.set_blocking(self._gate_r, False)
        try:
            return bool(os.read(self._gate_r, 1))
        except BlockingIOError:
            return False
        finally:
            os.close(self._gate_r)
            self._gate_r = -1

    def kill(self) -> None:
        """End the sandbox (before or after release)."""
        if self.process.poll() is None:
            try:
                self.process.kill()  # --die-with-parent takes the sandbox down with it
            except OSError:
                pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.close()

    def close(self) -> None:
        for name in ("_info_r", "_gate_w", "_gate_r"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)

    # -- signals ----------------------------------------------------------------
    def command_pid(self) -> int | None:
        """Host pid of the command (pid 2 inside the sandbox), or None if it is not running."""
        if self.init_pid is None:
            return None
        for pid in _children(self.init_pid):
            if _namespace_pid(pid) == 2:
                return pid
        return None

    def send_signal(self, signum: int) -> None:
        pid = self.command_pid()
        if pid is None and self.released:
            deadline = time.monotonic() + _COMMAND_PID_WAIT
            while pid is None and time.monotonic() < deadline and self.process.poll() is None:
                time.sleep(0.002)
                pid = self.command_pid()
        if pid is None:
            if signum in _TERMINATING and self.process.poll() is None:
                self.interrupted = signum
                self.kill_sandbox_init()
            return
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def kill_sandbox_init(self) -> None:
        """A terminating signal before the command started: end the sandbox instead."""
        try:
            self.process.kill()
        except OSError:
            pass


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        pass
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            if len(fields) > 1 and fields[1] == str(pid):
                found.append(int(entry))
    return found


def _namespace_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        return None
    return None


@contextmanager
def forwarding_signals(sandbox: Sandbox):
    """Forward the usual terminal and job-control signals to the command while it runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def forward(signum, _frame) -> None:
        sandbox.send_signal(signum)

    for name in FORWARDED_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is not None:
            previous[signum] = signal.signal(signum, forward)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
