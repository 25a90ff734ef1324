"""``run_isolated``: ``authsome run --isolate``, the child in a bubblewrap sandbox behind the proxy.

Order of events (the command runs only at the last step, so every failure
before it leaves nothing running and nothing exposed):

1. refuse binds that would expose the vault (exit 2); find bubblewrap (exit 9);
2. fix the proxy's address inside the sandbox (127.0.0.1 and a port: the
   sandbox's network namespace is empty, so any port is free) and its
   credentials, so the child's environment is known before bubblewrap starts;
3. start bubblewrap with that environment, held before the command;
4. make the proxy's listening socket inside the sandbox's network namespace
   (nslisten.py) and start the proxy on it, write the CA bundle;
5. release the command; forward signals to it; return its exit status.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence

from authsome.errors import IsolationUnavailableError, UsageError
from authsome.sandbox import nslisten
from authsome.sandbox.availability import unavailable
from authsome.sandbox.bwrap import build_argv, find_bwrap
from authsome.sandbox.egress import EGRESS_CHOICES
from authsome.sandbox.launch import Sandbox, SetupFailed, forwarding_signals
from authsome.sandbox.paths import resolve_command
from authsome.sandbox.plan import build_plan

#: Host-side variables that point at things the sandbox does not contain.
_HOST_ONLY_VARS = ("XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS", "SSH_AUTH_SOCK", "GPG_AGENT_INFO", "TMPDIR")
_PROXY_USER = "authsome"


def _sandbox_port() -> int:
    return 20000 + secrets.randbelow(40000)


def _isolated_env(env: dict[str, str], home_dir: str) -> dict[str, str]:
    for name in _HOST_ONLY_VARS:
        env.pop(name, None)
    env["HOME"] = home_dir
    return env


def run_isolated(
    cmd: Sequence[str],
    routes: list,
    *,
    binds: Sequence[str] = (),
    ro_binds: Sequence[str] = (),
    egress: str = "all",
    home=None,
    audit: Callable[[dict], None] | None = None,
    extra_ca_bundle: str | None = None,
    cwd: str | None = None,
) -> int:
    """Run ``cmd`` isolated, its only way out the credential-injecting proxy.

    ``home``: the authsome home (a ``Home`` or a path; default as ``Home()``).
    Returns the command's exit status (128+N when killed by signal N).
    Raises ``UsageError`` (exit 2) for a refused bind and
    ``IsolationUnavailableError`` (exit 9) when no sandbox can be built; in
    both cases the command was not started.
    """
    from authsome.home import Home
    from authsome.proxy.childenv import PRELOAD_PATH, build_child_env

    if egress not in EGRESS_CHOICES:
        raise UsageError(f"--egress must be one of {', '.join(EGRESS_CHOICES)}, not {egress!r}.")
    if not sys.platform.startswith("linux"):
        raise unavailable()
    home_path = getattr(home, "path", home) if home is not None else Home().path
    command_path = resolve_command(cmd[0], os.environ)
    if command_path is None:
        print(f"authsome run: command not found: {cmd[0]}", file=sys.stderr)
        return 127
    extra_ca_bundle = extra_ca_bundle or os.environ.get("AUTHSOME_CA_BUNDLE") or None
    if extra_ca_bundle:
        from authsome.proxy.runner import check_ca_bundle

        check_ca_bundle(extra_ca_bundle)
    workdir = tempfile.mkdtemp(prefix="authsome-run-")
    try:
        plan = build_plan(
            cmd,
            command_path,
            home=home_path,
            environ=os.environ,
            binds=binds,
            ro_binds=ro_binds,
            cwd=cwd,
            run_files=[workdir, str(PRELOAD_PATH)],
        )
        bwrap = find_bwrap()
        if bwrap is None:
            raise unavailable(bwrap=None)
        run = _IsolatedRun(bwrap, routes, egress=egress, audit=audit, extra_ca_bundle=extra_ca_bundle)
        run.bundle_path = os.path.join(workdir, "ca-bundle.pem")
        env = build_child_env(os.environ, proxy_url=run.proxy_url, ca_bundle_path=run.bundle_path, routes=routes)
        env = _isolated_env(env, plan.home_dir)
        return run.execute(lambda info_fd, block_fd: build_argv(bwrap, plan, info_fd=info_fd, block_fd=block_fd), env)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class _IsolatedRun:
    """The proxy side of one isolated run: its address, credentials and lifetime."""

    def __init__(self, bwrap: str, routes: list, *, egress: str, audit, extra_ca_bundle: str | None) -> None:
        self.bwrap = bwrap
        self.routes = routes
        self.egress = egress
        self.audit = audit
        self.extra_ca_bundle = extra_ca_bundle
        self.password = secrets.token_urlsafe(24)
        self.port = _sandbox_port()
        self.bundle_path = ""

    @property
    def proxy_url(self) -> str:
        return f"http://{_PROXY_USER}:{self.password}@127.0.0.1:{self.port}"

    def _server(self):
        from authsome.sandbox.proxy_policy import IsolatedProxyServer

        return IsolatedProxyServer(
            self.routes,
            username=_PROXY_USER,
            password=self.password,
            audit=self.audit,
            extra_ca_bundle=self.extra_ca_bundle,
            egress=self.egress,
        )

    def _write_bundle(self, server) -> None:
        from authsome.proxy.childenv import build_ca_bundle

        fd = os.open(self.bundle_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as bundle:
            bundle.write(build_ca_bundle(server.ca.cert_pem, self.extra_ca_bundle))

    def execute(self, argv_for, env: dict[str, str]) -> int:
        from authsome.proxy.runner import ProxyThread, exit_status

        try:
            sandbox = Sandbox(argv_for, env)
        except OSError as exc:
            raise unavailable(f"bubblewrap at {self.bwrap} could not be started ({exc.strerror})", self.bwrap) from None
        proxy = listener_maker = None
        with forwarding_signals(sandbox):
            try:
                # Both overlap bubblewrap's start-up: the namespace helper and the run's CA.
                listener_maker = nslisten.NamespaceListener(self.port)
                server = self._server()
                init_pid = sandbox.wait_for_namespaces()
                listener = listener_maker.listen(init_pid)
                proxy = ProxyThread(server, listener)
                proxy.start()
                self._write_bundle(server)
                if sandbox.interrupted is not None:
                    return 128 + sandbox.interrupted
                sandbox.release()
                status = exit_status(sandbox.wait())
                return 128 + sandbox.interrupted if sandbox.interrupted is not None else status
            except SetupFailed as exc:
                if sandbox.interrupted is not None:
                    return 128 + sandbox.interrupted
                raise unavailable(str(exc), self.bwrap) from None
            except IsolationUnavailableError:
                raise
            finally:
                sandbox.kill()
                if listener_maker is not None:
                    listener_maker.close()
                if proxy is not None:
                    proxy.stop()
