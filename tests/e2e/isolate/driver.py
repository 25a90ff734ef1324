"""Runs inside a private network + mount namespace (see conftest.py), as root or as the test user.

Starts the stand-in upstream (the proxy e2e tests' one) on 127.0.0.1:443/:80,
the host services a hostile child must not reach (a loopback TCP service and
an IPv6 one that hand out the canary, a UDP listener, a Unix socket outside
the child's directories, an abstract Unix socket), builds the routes from the
real authsome home of the scenario, then ``run_isolated`` with the child
command. Writes the exit status, audit events and what the host services
saw to the config's ``result`` path.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "proxy"))

from upstream import start_in_thread as start_upstream  # noqa: E402


class HostServices:
    """Listeners on the host side; each hands the canary to whoever connects."""

    def __init__(self, config: dict) -> None:
        self.canary = config["canary"].encode()
        self.seen: dict[str, int] = {"tcp": 0, "tcp6": 0, "udp": 0, "unix": 0, "abstract": 0, "dbus": 0}
        self.sockets = []
        self._tcp("tcp", socket.AF_INET, ("127.0.0.1", config["service_port"]))
        self._tcp("tcp6", socket.AF_INET6, ("::1", config["service_port"]))
        self._tcp("unix", socket.AF_UNIX, config["unix_socket"])
        self._tcp("abstract", socket.AF_UNIX, "\0" + config["abstract_name"])
        self._tcp("dbus", socket.AF_UNIX, config["dbus_socket"])
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", config["service_port"]))
        threading.Thread(target=self._udp, args=(udp,), daemon=True).start()

    def _tcp(self, name: str, family: int, address) -> None:
        sock = socket.socket(family, socket.SOCK_STREAM)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(16)
        self.sockets.append(sock)
        threading.Thread(target=self._accept, args=(name, sock), daemon=True).start()

    def _accept(self, name: str, sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            self.seen[name] += 1
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(self.canary), self.canary))
            except OSError:
                pass
            conn.close()

    def _udp(self, sock: socket.socket) -> None:
        while True:
            try:
                sock.recv(65536)
            except OSError:
                return
            self.seen["udp"] += 1


def routes_from_home(home: str) -> list:
    """Routes exactly as ``authsome run`` builds them, from the connections stored in the real vault."""
    from authsome.client import Authsome
    from authsome.run_routes import routes_for

    return routes_for(Authsome(home))


def main() -> None:
    config = json.load(open(sys.argv[1]))
    start_upstream(config)
    services = HostServices(config) if config.get("host_services", True) else None
    from authsome.sandbox.runner import run_isolated

    if config.get("child_config"):  # what the hostile child may know: paths and the broker's pid, no secret
        with open(config["child_config"]["path"], "w") as f:
            json.dump({**config["child_config"], "broker_pid": os.getpid()}, f)
    events: list[dict] = []
    error = None
    try:
        status = run_isolated(
            config["cmd"],
            routes_from_home(config["home"]),
            binds=config.get("binds", []),
            ro_binds=config.get("ro_binds", []),
            egress=config.get("egress", "all"),
            home=config["home"],
            audit=events.append,
            extra_ca_bundle=config["extra_ca_bundle"],
        )
    except Exception as exc:  # the CLI would render it; the test reads it
        status = getattr(exc, "exit_code", 1)
        error = {"type": type(exc).__name__, "message": str(exc)}
    with open(config["result"], "w") as f:
        json.dump({"status": status, "audit": events, "error": error, "seen": services.seen if services else {}}, f)


if __name__ == "__main__":
    main()
