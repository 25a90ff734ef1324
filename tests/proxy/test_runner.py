"""run_with_proxy outside any namespace: handed sockets, exit statuses, cleanup."""

from __future__ import annotations

import json
import os
import socket
import sys

from authsome.proxy.routes import Route
from authsome.proxy.runner import exit_status, run_with_proxy


def child_env_dump(tmp_path) -> list[str]:
    out = tmp_path / "env.json"
    return [sys.executable, "-c", f"import json, os; json.dump(dict(os.environ), open({str(out)!r}, 'w'))"], out


def test_handed_listening_socket_is_used(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    cmd, out = child_env_dump(tmp_path)
    route = Route("openai", "default", ["api.openai.com"], lambda: None, env_vars=["OPENAI_API_KEY"])
    assert run_with_proxy(cmd, [route], listen_socket=listener) == 0
    env = json.loads(out.read_text())
    assert env["HTTPS_PROXY"].endswith(f"@127.0.0.1:{port}")
    assert env["OPENAI_API_KEY"] == "authsome-proxy-managed"
    assert not os.path.exists(env["SSL_CERT_FILE"])


def test_missing_command_is_127(capsys):
    assert run_with_proxy(["/nonexistent/authsome-test-cmd"], []) == 127
    assert "command not found" in capsys.readouterr().err


def test_exit_status_mapping():
    assert exit_status(0) == 0
    assert exit_status(5) == 5
    assert exit_status(-15) == 143


def test_unusable_extra_ca_bundle_is_a_clear_usage_error(tmp_path):
    import pytest

    from authsome.errors import UsageError

    with pytest.raises(UsageError, match="cannot be read"):
        run_with_proxy(["true"], [], extra_ca_bundle=str(tmp_path / "missing.pem"))
    (tmp_path / "notpem.pem").write_text("hello")
    with pytest.raises(UsageError, match="no PEM certificate"):
        run_with_proxy(["true"], [], extra_ca_bundle=str(tmp_path / "notpem.pem"))


def test_route_calls_the_lookup_again_once_the_cache_is_stale(monkeypatch):
    import authsome.proxy.routes as routes_module

    calls = []
    route = Route("openai", "default", ["api.openai.com"], lambda: calls.append(1) or len(calls))
    now = [1000.0]
    monkeypatch.setattr(routes_module.time, "monotonic", lambda: now[0])
    assert route.injection() == 1 and route.injection() == 1
    assert route.cached_injection() == 1
    now[0] += 60  # a refreshed OAuth token must be picked up
    assert route.cached_injection() is None
    assert route.injection() == 2


def test_route_matching_uses_whole_labels():
    route = Route("google", "default", ["*.googleapis.com", "api.openai.com"], lambda: None)
    assert route.matches("www.googleapis.com") and route.matches("API.OpenAI.com.")
    for host in ("googleapis.com", "evilgoogleapis.com", "api.openai.com.evil.test", "evil-api.openai.com"):
        assert not route.matches(host)


def _blocked_signals(native_id: int) -> int:
    status = open(f"/proc/self/task/{native_id}/status").read()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigBlk:")), 16)


def test_proxy_threads_leave_forwarded_signals_to_the_main_thread():
    """A signal for `authsome run` must reach the main thread, which forwards it; a proxy
    thread that took it would leave it unhandled while the main thread waits for the child."""
    import signal
    import threading
    import time

    from authsome.proxy.runner import ProxyThread
    from authsome.proxy.server import ProxyServer

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    proxy = ProxyThread(ProxyServer([], username="u", password="p"), listener)
    proxy.start()
    client = socket.create_connection(listener.getsockname(), timeout=10)  # a connection thread, waiting
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            # A thread is listed from its start(), but has its native id only once it runs.
            threads = {t.name: t for t in threading.enumerate() if t.native_id is not None}
            if "authsome-proxy-conn" in threads and "authsome-proxy" in threads:
                break
            time.sleep(0.01)
        wanted = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
        checked = set()
        for thread in threading.enumerate():  # ours, and any left by earlier tests in this process
            if thread.name not in ("authsome-proxy", "authsome-proxy-conn") or thread.native_id is None:
                continue
            try:
                mask = _blocked_signals(thread.native_id)
            except FileNotFoundError:
                continue  # ended meanwhile (not ours: ours are kept busy)
            assert all(mask & (1 << (signum - 1)) for signum in wanted), thread.name
            checked.add(thread.name)
        assert checked == {"authsome-proxy", "authsome-proxy-conn"}
        main_mask = _blocked_signals(threading.main_thread().native_id)
        assert not any(main_mask & (1 << (signum - 1)) for signum in wanted)
    finally:
        client.close()
        proxy.stop()


def test_a_signal_taken_by_another_thread_still_reaches_the_child(tmp_path):
    """The kernel may hand a process's signal to any thread that does not block it; the main
    thread, waiting for the child, must still run the forwarding handler at once."""
    import signal
    import threading
    import time

    ready = tmp_path / "ready"
    # The child exits 3 on SIGHUP, or 0 by itself after 20 s (the signal never came).
    script = f'trap "exit 3" HUP; touch {ready}; i=0; while [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done'

    def take_the_signal_here() -> None:
        deadline = time.monotonic() + 20
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        signal.pthread_kill(threading.get_ident(), signal.SIGHUP)  # delivered to this thread, not the main one

    helper = threading.Thread(target=take_the_signal_here)
    helper.start()
    try:
        assert threading.current_thread() is threading.main_thread()
        assert run_with_proxy(["sh", "-c", script], []) == 3
    finally:
        helper.join(30)
