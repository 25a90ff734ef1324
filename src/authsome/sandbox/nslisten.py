"""The proxy's listening socket, made inside the sandbox's network namespace.

A forked helper joins the sandbox's network namespace (and, when not root,
the user namespace that owns it: ``NS_GET_USERNS``), binds
``127.0.0.1:PORT`` there, and passes the listening socket back over a Unix
socket pair (``SCM_RIGHTS``). A socket stays in the namespace it was made
in, so the proxy, running on the host, accepts the child's connections
directly: nothing of ours runs inside the sandbox for the child to kill or
abuse. The helper is a fork because joining a user namespace requires a
single-threaded process; it is forked while bubblewrap starts (so the cost
of forking a large Python process overlaps it), waits for the sandbox's pid,
and exits as soon as the socket is sent. Where no user namespace needs
joining (root), a short-lived thread does it instead, with no fork at all.

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


def _bind_listener(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(LISTEN_BACKLOG)
    return sock


def _join(setns, pid: int) -> None:
    """Move the calling thread into the network namespace of ``pid`` (and its owner, if needed)."""
    net_fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            setns(net_fd, CLONE_NEWNET)
            return
        except PermissionError:
            import fcntl

            user_fd = fcntl.ioctl(net_fd, NS_GET_USERNS)  # the user namespace that owns the network one
        try:
            setns(user_fd, CLONE_NEWUSER)  # gives CAP_SYS_ADMIN over the namespace's network
        finally:
            os.close(user_fd)
        setns(net_fd, CLONE_NEWNET)
    finally:
        os.close(net_fd)


def _helper(setns, port: int, channel: socket.socket) -> None:
    """Runs in the forked child: wait for the pid, join, bind, send, exit. Never returns."""
    code = 0
    try:
        # Nothing of the broker's (the vault's database among its open files) goes along.
        keep = channel.fileno()
        os.closerange(3, keep)
        os.closerange(keep + 1, max(os.sysconf("SC_OPEN_MAX"), keep + 1))  # close_range(2): one call
        channel.settimeout(_HELPER_TIMEOUT * 3)
        request = channel.recv(4)
        if len(request) == 4:
            _join(setns, struct.unpack("!i", request)[0])
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


def _listen_from_thread(setns, pid: int, port: int) -> socket.socket | None:
    """With CAP_SYS_ADMIN over the namespace (root): a short-lived thread joins it, no fork needed.

    Network namespaces are per thread, so only that thread moves; it ends
    right after. Returns None when not permitted (then the fork path is used).
    """
    import threading

    result: dict = {}

    def work() -> None:
        try:
            net_fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(net_fd, CLONE_NEWNET)
            finally:
                os.close(net_fd)
            result["socket"] = _bind_listener(port)
        except OSError as exc:
            result["error"] = exc

    thread = threading.Thread(target=work, name="authsome-netns-listener")
    thread.start()
    thread.join(_HELPER_TIMEOUT)
    if isinstance(result.get("error"), PermissionError) or thread.is_alive():
        return None
    if "error" in result:
        err = result["error"]
        raise _unavailable(f"cannot listen inside the sandbox's network namespace ({err.strerror or err})")
    return result["socket"]


class NamespaceListener:
    """Made before the sandbox exists, so the helper's fork overlaps bubblewrap's start-up; used once."""

    def __init__(self, port: int, setns=None) -> None:
        self.port = port
        self._setns = setns or _setns_function()
        self._channel: socket.socket | None = None
        self._child: int | None = None
        if os.geteuid() != 0:
            self._start_helper()

    def _start_helper(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        child = os.fork()
        if child == 0:
            ours.close()
            _helper(self._setns, self.port, theirs)
        theirs.close()
        self._channel, self._child = ours, child

    def listen(self, pid: int) -> socket.socket:
        """A listening TCP socket on 127.0.0.1:``port`` in the network namespace of ``pid``."""
        if self._child is None:
            listener = _listen_from_thread(self._setns, pid, self.port)
            if listener is not None:
                return listener
            self._start_helper()
        try:
            self._channel.sendall(struct.pack("!i", pid))
        except OSError as exc:
            raise _unavailable(f"the namespace helper is gone ({exc.strerror})") from None
        try:
            return _receive(self._channel)
        finally:
            self.close()

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()  # a helper still waiting sees the end and exits
            self._channel = None
        if self._child is not None:
            _reap(self._child)
            self._child = None


def listen_in_namespace(pid: int, port: int, setns=None) -> socket.socket:
    """A listening TCP socket on 127.0.0.1:``port`` inside the network namespace of ``pid``."""
    maker = NamespaceListener(port, setns)
    try:
        return maker.listen(pid)
    finally:
        maker.close()


def _receive(channel: socket.socket) -> socket.socket:
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
