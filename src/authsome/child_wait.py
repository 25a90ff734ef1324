"""Waiting for a child process while its signal handlers keep working.

Python runs signal handlers on the main thread only, between bytecodes. If the
kernel hands a signal for this process to another thread (any thread that does
not block it may take it), the handler waits until the main thread runs Python
again; a main thread blocked in ``waitpid`` does that only when the child ends,
so a forwarded signal (SIGTERM for the agent, say) would never be forwarded.

Here the main thread waits in ``poll`` on two descriptors instead: a pidfd,
readable when the child ends, and the signal wakeup pipe, which the interpreter
writes to from whichever thread took a signal. Either wakes it, and the
handlers run as soon as ``poll`` returns.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import threading


def wait_child(child: subprocess.Popen) -> int:
    """``child.wait()``, with signal handlers run promptly whichever thread took the signal."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(os, "pidfd_open"):
        return child.wait()
    try:
        pidfd = os.pidfd_open(child.pid)
    except OSError:  # an old kernel, or the child is gone already
        return child.wait()
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    previous = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        poller.register(wake_r, select.POLLIN)
        while True:
            ready = {fd for fd, _ in poller.poll()}  # handlers for any signal taken run on return
            if wake_r in ready:
                try:
                    while os.read(wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
            if pidfd in ready:
                return child.wait()
    finally:
        signal.set_wakeup_fd(previous)
        for fd in (pidfd, wake_r, wake_w):
            os.close(fd)
