"""The proxy's listening socket, made inside the sandbox's network namespace.

A forked helper joins the sandbox's network namespace (and, when not root,
the user namespace that owns it: ``NS_GET_USERNS``), binds
``127.0.0.1:PORT`` there, and passes the listening socket back over a Unix
socket pair (``SCM_RIGHTS``). A socket stays in the namespace it was made
in, so the proxy, running on the host, accepts the child's connections
directly: nothing of ours runs inside the sandbox for the child to kill or
abuse. The helper is a fork because joining a user namespace requires a
single-threaded process; it exits as soon as the socket is sent.

The sandbox brings its loopback up a moment after its namespaces exist;
``IP_FREEBIND`` lets the bind succeed before that, and the child runs only
after bubblewrap's setup (loopback included) is done.
"""

from __future__ import annotations

import errno
import os
import socket
import struct

from authsome.errors import IsolationUnavailableError

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
NS_GET_USERNS = 0xB701  # _IO(0xb7, 0x1)
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
LISTEN_BACKLOG = 256
_HELPER_TIMEOUT = 10.0


def _setns_function():
    """``os.setns`` (Python >= 3.12) or libc's through ctypes (loaded before the fork)."""
    if hasattr(os, "setns"):
        return os.setns
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.setns.argtypes = (ctypes.c_int, ctypes.c_int)

    def setns(fd: int, nstype: int) -> None:
        if libc.setns(fd, nstype) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    return setns


def prepare() -> object:
    """Load what the helper needs ahead of time (call while bubblewrap starts)."""
    return _setns_function()


def _bind_listener(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(LISTEN_BACKLOG)
    return sock


def _helper(setns, net_fd: int, user_fd: int | None, port: int, channel: socket.socket) -> None:
    """Runs in the forked child: join, bind, send, exit. Never returns."""
    code = 0
    try:
        try:
            setns(net_fd, CLONE_NEWNET)
        except PermissionError:
            if user_fd is None:
                raise
            setns(user_fd, CLONE_NEWUSER)  # gives CAP_SYS_ADMIN over the namespace's network
            setns(net_fd, CLONE_NEWNET)
        listener = _bind_listener(port)
        socket.send_fds(channel, [b"\0\0\0\0"], [listener.fileno()])
    except OSError as exc:
        code = 1
        try:
            channel.sendall(struct.pack("!i", exc.errno or errno.EIO))
        except OSError:
            pass
    except BaseException:  # noqa: BLE001 - a forked child must never unwind into the parent's code
        code = 2
    os._exit(code)


def listen_in_namespace(pid: int, port: int, setns=None) -> socket.socket:
    """A listening TCP socket on 127.0.0.1:``port`` inside the network namespace of ``pid``."""
    setns = setns or _setns_function()
    try:
        net_fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise _unavailable(f"cannot open the sandbox's network namespace ({exc.strerror})") from None
    user_fd = None
    try:
        try:
            import fcntl

            user_fd = fcntl.ioctl(net_fd, NS_GET_USERNS)
        except OSError:
            user_fd = None  # kernels before 4.9: try the network namespace alone
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with ours, theirs:
            child = os.fork()
            if child == 0:
                ours.close()
                _helper(setns, net_fd, user_fd, port, theirs)
            theirs.close()
            try:
                return _receive(ours, child)
            finally:
                _reap(child)
    finally:
        os.close(net_fd)
        if user_fd is not None:
            os.close(user_fd)


def _receive(channel: socket.socket, child: int) -> socket.socket:
    channel.settimeout(_HELPER_TIMEOUT)
    try:
        data, fds, _flags, _addr = socket.recv_fds(channel, 4, 1, socket.MSG_CMSG_CLOEXEC)
    except (OSError, TimeoutError) as exc:
        raise _unavailable(f"the namespace helper did not answer ({exc})") from None
    if fds:
        for extra in fds[1:]:
            os.close(extra)
        return socket.socket(fileno=fds[0])
    if len(data) == 4:
        err = struct.unpack("!i", data)[0]
        raise _unavailable(f"cannot listen inside the sandbox's network namespace ({os.strerror(err)})")
    raise _unavailable("the namespace helper failed")


def _reap(child: int) -> None:
    try:
        os.waitpid(child, 0)
    except ChildProcessError:
        pass


def _unavailable(detail: str) -> IsolationUnavailableError:
    return IsolationUnavailableError(
        f"authsome run --isolate: {detail}; the command was not started.",
        hint="Check that user namespaces are allowed here (`authsome doctor` says whether --isolate works).",
    )
