"""``run_with_proxy``: start the proxy, run the child through it, clean up on every path.

The proxy serves from background threads while the main thread waits for
the child and forwards signals to it. Start-up order is chosen for speed:
the CA and the listening socket are made first, the child is started, and
only then does the proxy thread import and build the server. The only file created
is the CA bundle (public certificates only) in a private temporary
directory, removed with the directory when the child ends; the CA key stays
in memory.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable

from authsome.proxy.childenv import build_ca_bundle, build_child_env
from authsome.proxy.routes import Route

_FORWARDED_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
_PROXY_USER = "authsome"


class ProxyThread:
    """A ``ProxyServer`` accepting connections in a daemon thread (one more thread per connection).

    ``server`` may be a zero-argument callable that builds the server: it is
    then called on the proxy thread, so importing the proxy's modules
    overlaps the child's start-up instead of delaying it. Connections that
    arrive meanwhile wait in the listening socket's backlog.
    """

    def __init__(self, server, listen_socket=None) -> None:
        self._factory = server if callable(server) and not hasattr(server, "serve") else None
        self.server = None if self._factory is not None else server
        self._socket = listen_socket
        self._stopping = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="authsome-proxy", daemon=True)

    @property
    def started(self) -> bool:
        return self._thread.ident is not None

    def start(self, timeout: float = 10.0) -> tuple:
        """Start serving; returns the listening address (the socket is listening already)."""
        if self._socket is None:
            self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._socket.bind(("127.0.0.1", 0))
            self._socket.listen(128)
        address = self._socket.getsockname()
        _start_with_signals_blocked(self._thread)
        return address

    def _run(self) -> None:
        try:
            if self.server is None:
                server = self._factory()
                with self._lock:
                    self.server = server
                    if self._stopping:
                        return
            self.server.serve(self._socket)
        except BaseException as exc:  # noqa: BLE001 - reported, and the socket closed so clients fail fast
            if not self._stopping:
                print(f"authsome run: the proxy stopped ({type(exc).__name__})", file=sys.stderr)
        finally:
            try:
                self._socket.close()
            except OSError:
                pass

    def stop(self, timeout: float = 10.0, join: bool = True) -> None:
        """Stop serving. ``join=False`` does not wait for the thread (the process is about to exit)."""
        with self._lock:
            self._stopping = True
            server = self.server
        if server is not None:
            server.close()
        elif self._socket is not None:
            try:
                self._socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if join and self._thread.ident is not None and self._thread.is_alive():
            self._thread.join(timeout)
        if join and server is not None:
            server.wait_closed(timeout)


def _start_with_signals_blocked(thread: threading.Thread) -> None:
    """Start ``thread`` with the forwarded signals blocked in it, and so in the threads it starts.

    The kernel then hands a signal sent to this process to the main thread. One that
    landed on a proxy thread would wait for the main thread to run Python again, and
    the main thread sits in ``waitpid`` until the child ends: it would never be forwarded.
    """
    if threading.current_thread() is not threading.main_thread():
        thread.start()
        return
    forwarded = {getattr(signal, name) for name in _FORWARDED_SIGNALS if hasattr(signal, name)}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, forwarded)
    try:
        thread.start()  # inherits the mask
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # one that came meanwhile is handled now


def _private_dir() -> str:
    """A new 0700 directory under the temporary directory (tempfile would cost the start-up its import)."""
    base = os.environ.get("TMPDIR") or "/tmp"  # noqa: S108 - mkdir of a random name, 0700, never reused
    for _ in range(100):
        path = os.path.join(base, f"authsome-run-{secrets.token_hex(8)}")
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary directory name under {base}")


def _remove_private_dir(path: str) -> None:
    """Remove the run's directory (it holds the CA bundle only; anything else the child put there too)."""
    try:
        entries = os.listdir(path)
    except OSError:
        return
    for name in entries:
        try:
            os.unlink(os.path.join(path, name))
        except IsADirectoryError:
            import shutil

            shutil.rmtree(os.path.join(path, name), ignore_errors=True)
        except OSError:
            pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def exit_status(returncode: int) -> int:
    """A shell's view of a child's end: 128+N when killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def _terminal_delivers_sigint() -> bool:
    """True when a terminal's Ctrl-C already reaches the child (same foreground process group)."""
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError, AttributeError):
        return False


class _SignalForwarder:
    """Forwards signals to the child; installed before the child starts so none is lost."""

    def __init__(self) -> None:
        self.child: subprocess.Popen | None = None
        self.pending: list[int] = []
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _SignalForwarder:
        if threading.current_thread() is threading.main_thread():
            for name in _FORWARDED_SIGNALS:
                signum = getattr(signal, name, None)
                if signum is not None:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum, _frame) -> None:
        if signum == signal.SIGINT and _terminal_delivers_sigint():
            return  # the child got this Ctrl-C from the terminal already
        if self.child is None:
            self.pending.append(signum)
            return
        self._send(signum)

    def _send(self, signum: int) -> None:
        try:
            self.child.send_signal(signum)
        except (ProcessLookupError, OSError):
            pass

    def started(self, child: subprocess.Popen) -> None:
        self.child = child
        for signum in self.pending:
            self._send(signum)
        self.pending.clear()


def check_ca_bundle(path: str) -> None:
    """Refuse an extra CA bundle that cannot be used, before anything starts."""
    from authsome.errors import UsageError

    try:
        with open(path, "rb") as f:
            content = f.read()
    except OSError as exc:
        raise UsageError(
            f"The extra CA bundle {path} cannot be read: {exc.strerror}.",
            hint="Set AUTHSOME_CA_BUNDLE to a PEM file of CA certificates, or unset it.",
        ) from None
    if b"-----BEGIN CERTIFICATE-----" not in content:
        raise UsageError(
            f"The extra CA bundle {path} holds no PEM certificate.",
            hint="Set AUTHSOME_CA_BUNDLE to a PEM file of CA certificates, or unset it.",
        )


def run_with_proxy(
    cmd: list[str],
    routes: list[Route],
    *,
    audit: Callable[[dict], None] | None = None,
    extra_ca_bundle: str | None = None,
    listen_socket=None,
    proxy_address: tuple[str, int] | None = None,
    join_proxy: bool = True,
) -> int:
    """Run ``cmd`` with every request to a route's hosts credentialed by the proxy.

    ``extra_ca_bundle`` (default: ``AUTHSOME_CA_BUNDLE``) is trusted for
    upstream TLS and given to the child too. ``listen_socket``: a listening
    socket to serve on instead of an ephemeral 127.0.0.1 port;
    ``proxy_address`` is the (host, port) the child should use when that
    differs from the socket's own (required for a Unix socket). ``audit`` is
    called on the proxy's thread, once per injected request, with a dict of
    provider, connection, host, method, path (no query) and status: keep it
    quick (buffer, flush after). Returns the child's exit status (128+N when
    killed by signal N); 127/126 when ``cmd`` is not found / not executable.
    Raises ``UsageError`` for an unusable extra CA bundle. ``join_proxy=False``
    does not wait for the proxy's thread at the end: for a caller that exits
    the process right after (with ``os._exit``), so that no thread is left
    inside OpenSSL while the interpreter tears down.
    """
    from authsome.proxy.ca import RunCA
    from authsome.proxy.routes import all_host_patterns

    if listen_socket is not None and proxy_address is None:
        if listen_socket.family not in (socket.AF_INET, socket.AF_INET6):
            raise ValueError("run_with_proxy: a Unix listening socket needs proxy_address")
    extra_ca_bundle = extra_ca_bundle or os.environ.get("AUTHSOME_CA_BUNDLE") or None
    if extra_ca_bundle:
        check_ca_bundle(extra_ca_bundle)
    password = secrets.token_urlsafe(24)
    ca = RunCA(all_host_patterns(routes))

    def build_server():
        from authsome.proxy.server import ProxyServer

        return ProxyServer(
            routes, username=_PROXY_USER, password=password, audit=audit, extra_ca_bundle=extra_ca_bundle, ca=ca
        )

    if listen_socket is None:
        listen_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listen_socket.bind(("127.0.0.1", 0))
        listen_socket.listen(128)
    proxy = ProxyThread(build_server, listen_socket)
    workdir = _private_dir()
    try:
        address = proxy_address or listen_socket.getsockname()[:2]
        bundle_path = os.path.join(workdir, "ca-bundle.pem")
        fd = os.open(bundle_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as bundle:
            bundle.write(build_ca_bundle(ca.cert_pem, extra_ca_bundle))
        host = f"[{address[0]}]" if ":" in str(address[0]) else address[0]
        proxy_url = f"http://{_PROXY_USER}:{password}@{host}:{address[1]}"
        env = build_child_env(os.environ, proxy_url=proxy_url, ca_bundle_path=bundle_path, routes=routes)
        with _SignalForwarder() as forwarder:
            try:
                child = subprocess.Popen(cmd, env=env)
            except FileNotFoundError:
                print(f"authsome run: command not found: {cmd[0]}", file=sys.stderr)
                return 127
            except PermissionError:
                print(f"authsome run: permission denied: {cmd[0]}", file=sys.stderr)
                return 126
            forwarder.started(child)
            proxy.start()  # after the child: its imports overlap the child's start-up
            from authsome.child_wait import wait_child

            while True:
                try:
                    returncode = wait_child(child)
                    break
                except KeyboardInterrupt:  # a SIGINT the handler did not catch: keep waiting
                    continue
        return exit_status(returncode)
    finally:
        proxy.stop(join=join_proxy)
        if not proxy.started:
            listen_socket.close()
        if not join_proxy:
            # The process is about to end without waiting for the proxy: let a credential lookup
            # in progress (an OAuth refresh storing a rotated token) finish first.
            for route in routes:
                route.wait_idle(timeout=30.0)
        _remove_private_dir(workdir)
