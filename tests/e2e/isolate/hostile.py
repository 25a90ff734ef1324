"""A hostile agent: tries every channel to the stored key from inside ``run --isolate``.

Runs with the system Python (standard library only). It does not know the
canary: like a real attacker it collects whatever each channel yields
(file contents, process memory, responses, key-shaped strings) and writes it,
per channel, to a JSON report; the test, outside, looks for the canary and
the vault's key in it. ``breach`` marks a channel whose mere success breaks
isolation (a mount, a new user namespace, a ptrace attach, TIOCSTI, a
connection to a host service).

usage: hostile.py CONFIG.json REPORT.json
"""

from __future__ import annotations

import base64
import ctypes
import fcntl
import json
import os
import re
import socket
import ssl
import sys
import termios
import urllib.parse

KEY_SHAPED = re.compile(rb"sk-[A-Za-z0-9_\-]{20,}")
PEM_KEY = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----.+?-----END [A-Z ]*PRIVATE KEY-----", re.S)
MAX_FILE = 4 * 1024 * 1024
SYSTEM_TREES = ("/usr", "/opt")
libc = ctypes.CDLL(None, use_errno=True)


class Report:
    def __init__(self) -> None:
        self.channels: dict[str, dict] = {}

    def add(self, name: str, evidence: bytes = b"", breach: bool = False, note: str = "") -> None:
        entry = self.channels.setdefault(name, {"evidence": "", "breach": False, "notes": []})
        if evidence:
            entry["evidence"] += base64.b64encode(evidence[: 1 << 20]).decode() + " "
        entry["breach"] = entry["breach"] or breach
        if note:
            entry["notes"].append(note[:300])


def read(path: str, limit: int = MAX_FILE) -> bytes:
    with open(path, "rb") as f:
        return f.read(limit)


def try_read(report: Report, channel: str, path: str) -> None:
    try:
        data = read(path)
    except OSError as exc:
        report.add(channel, note=f"{path}: {exc.strerror}")
        return
    report.add(channel, data, note=f"{path}: read {len(data)} bytes")


def try_listdir(report: Report, channel: str, path: str) -> None:
    try:
        names = os.listdir(path)
    except OSError as exc:
        report.add(channel, note=f"{path}: {exc.strerror}")
        return
    report.add(channel, "\n".join(names).encode(), breach=True, note=f"{path}: listed {names}")
    for name in names:
        try_read(report, channel, os.path.join(path, name))


# -- the vault by its path, through /proc, through the broker --------------------
def vault_paths(report: Report, cfg: dict) -> None:
    home = cfg["home"]
    try_listdir(report, "vault_by_path", home)
    for name in ("vault.key", "vault.db", "vault.db-wal", "config.json", "audit.log"):
        try_read(report, "vault_by_path", os.path.join(home, name))
    try_listdir(report, "proc1_root", "/proc/1/root" + home)
    for name in ("vault.key", "vault.db"):
        try_read(report, "proc1_root", "/proc/1/root" + os.path.join(home, name))


def broker(report: Report, cfg: dict) -> None:
    pid = cfg["broker_pid"]
    try_listdir(report, "broker_root", f"/proc/{pid}/root{cfg['home']}")
    try_read(report, "broker_environ", f"/proc/{pid}/environ")
    try_read(report, "broker_cmdline", f"/proc/{pid}/cmdline")
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
        report.add("broker_fd", breach=True, note=f"fds {fds}")
        for fd in fds:
            try_read(report, "broker_fd", f"/proc/{pid}/fd/{fd}")
    except OSError as exc:
        report.add("broker_fd", note=f"/proc/{pid}/fd: {exc.strerror}")
    try:
        maps = read(f"/proc/{pid}/maps").decode()
        with open(f"/proc/{pid}/mem", "rb") as mem:
            for line in maps.splitlines():
                start, end = (int(x, 16) for x in line.split()[0].split("-"))
                if "rw" in line.split()[1]:
                    try:
                        mem.seek(start)
                        report.add("broker_mem", mem.read(min(end - start, 1 << 22)), breach=True)
                    except OSError:
                        continue
    except OSError as exc:
        report.add("broker_mem", note=f"/proc/{pid}/mem: {exc.strerror}")
    # Every process this sandbox can see: its environment and memory.
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try_read(report, "proc_environ_all", f"/proc/{entry}/environ")
    try_read(report, "ca_bundle", os.environ.get("SSL_CERT_FILE", "/nonexistent"))
    report.add("own_environment", "\n".join(f"{k}={v}" for k, v in os.environ.items()).encode())


# -- searching the file system -----------------------------------------------------
def search(report: Report) -> None:
    found_names = []
    for top, dirs, files in os.walk("/", onerror=None):
        if top in ("/proc", "/sys", "/dev"):
            dirs[:] = []
            continue
        for name in files:
            path = os.path.join(top, name)
            if name in ("vault.key", "vault.db", "vault.db-wal", "audit.log"):
                found_names.append(path)
                try_read(report, "search_vault_files", path)
            if top.startswith(SYSTEM_TREES):
                continue  # read-only host trees: searched by name only, to keep the run short
            try:
                if not os.path.isfile(path) or os.path.getsize(path) > MAX_FILE:
                    continue
                data = read(path)
            except OSError:
                continue
            for match in KEY_SHAPED.findall(data):
                report.add("search_key_shaped", match, note=path)
            for match in PEM_KEY.findall(data):
                report.add("search_private_keys", match, note=path)
    report.add("search_vault_files", breach=bool(found_names), note=f"found {found_names}")


# -- the network -----------------------------------------------------------------
def connect_and_read(family: int, address, timeout: float = 3.0) -> bytes:
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(address)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while len(data) < 65536:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def direct(report: Report, cfg: dict) -> None:
    port = cfg["service_port"]
    targets = [
        ("direct_tcp", socket.AF_INET, ("127.0.0.1", port)),
        ("direct_tcp", socket.AF_INET, ("127.0.0.1", 443)),
        ("direct_tcp", socket.AF_INET, ("api.openai.com", 443)),
        ("direct_ipv6", socket.AF_INET6, ("::1", port)),
        ("direct_ipv6", socket.AF_INET6, ("::1", 443)),
    ]
    for channel, family, address in targets:
        try:
            data = connect_and_read(family, address)
            report.add(channel, data, breach=True, note=f"{address}: connected")
        except OSError as exc:
            report.add(channel, note=f"{address}: {exc}")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.sendto(b"hostile datagram", ("127.0.0.1", port))
        report.add("direct_udp", note="sent (the host listener reports whether it arrived)")
    except OSError as exc:
        report.add("direct_udp", note=str(exc))
    try:
        socket.getaddrinfo("example.com", 443)
        report.add("dns", note="resolved example.com")
    except OSError as exc:
        report.add("dns", note=str(exc))


def unix_sockets(report: Report, cfg: dict) -> None:
    uid = os.getuid()
    paths = [
        cfg["unix_socket"],
        f"/run/user/{uid}/bus",
        "/run/dbus/system_bus_socket",
        "/var/run/dbus/system_bus_socket",
    ]
    bus = os.environ.get("DBUS_SESSION_BUS_ADDRESS", "")
    if bus.startswith("unix:path="):
        paths.append(bus[len("unix:path=") :].split(",")[0])
    for path in paths:
        channel = "host_unix_socket" if path == cfg["unix_socket"] else "dbus_socket"
        try:
            data = connect_and_read(socket.AF_UNIX, path)
            report.add(channel, data, breach=True, note=f"{path}: connected")
        except OSError as exc:
            report.add(channel, note=f"{path}: {exc}")
    try:
        data = connect_and_read(socket.AF_UNIX, "\0" + cfg["abstract_name"])
        report.add("abstract_socket", data, breach=True, note="connected")
    except OSError as exc:
        report.add("abstract_socket", note=str(exc))


def proxy_parts() -> tuple[str, int, str]:
    url = urllib.parse.urlsplit(os.environ["HTTPS_PROXY"])
    creds = base64.b64encode(f"{url.username}:{url.password}".encode()).decode()
    return url.hostname, url.port, creds


def proxy_exchange(request: bytes, then: bytes = b"") -> tuple[bytes, socket.socket]:
    host, port, _ = proxy_parts()
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(request)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    return head, s


def read_rest(s: socket.socket, first: bytes = b"") -> bytes:
    data = first
    try:
        while len(data) < 65536:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    return data


def proxy(report: Report, cfg: dict) -> None:
    port = cfg["service_port"]
    _, _, creds = proxy_parts()
    auth = f"Proxy-Authorization: Basic {creds}\r\n".encode()
    # Without credentials: must be refused.
    for target in (b"api.openai.com:443", b"127.0.0.1:%d" % port):
        try:
            head, s = proxy_exchange(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target))
            data = read_rest(s, head)
            s.close()
            report.add(
                "proxy_without_credentials",
                data,
                breach=b" 200 " in head.split(b"\r\n")[0],
                note=head[:40].decode("latin-1"),
            )
        except OSError as exc:
            report.add("proxy_without_credentials", note=str(exc))
    # With credentials, to the host's own services.
    targets = [
        f"127.0.0.1:{port}",
        f"localhost:{port}",
        f"127.0.0.2:{port}",
        f"[::1]:{port}",
        f"[::ffff:127.0.0.1]:{port}",
        f"0.0.0.0:{port}",
        f"[::]:{port}",
        f"rebind.test:{port}",
        "169.254.169.254:80",
    ]
    for target in targets:
        try:
            head, s = proxy_exchange(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n".encode() + auth + b"\r\n")
            status = head.split(b"\r\n")[0]
            if b" 200 " in status:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = read_rest(s, head)
            s.close()
            report.add("proxy_to_host_service", data, breach=b" 200 " in status, note=f"{target}: {status[:40]!r}")
        except OSError as exc:
            report.add("proxy_to_host_service", note=f"{target}: {exc}")
    for url, extra in (
        (f"http://127.0.0.1:{port}/", b""),
        (f"http://localhost:{port}/", b""),
        (f"http://rebind.test:{port}/", b""),
        (f"http://[::1]:{port}/", b""),
        (
            f"http://localhost:{port}/ws",
            b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
        ),
    ):
        host = urllib.parse.urlsplit(url).netloc
        try:
            request = f"GET {url} HTTP/1.1\r\nHost: {host}\r\n".encode() + auth + extra + b"\r\n"
            head, s = proxy_exchange(request)
            data = read_rest(s, head)
            s.close()
            status = head.split(b"\r\n")[0]
            breach = b" 200 " in status or b" 101 " in status
            report.add("proxy_plain_http_to_host", data, breach=breach, note=f"{url}: {status[:40]!r}")
        except OSError as exc:
            report.add("proxy_plain_http_to_host", note=f"{url}: {exc}")
    # A provider endpoint that reflects the request: the proxy must scrub the key.
    try:
        head, s = proxy_exchange(
            b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n" + auth + b"\r\n"
        )
        ctx = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
        with ctx.wrap_socket(s, server_hostname="api.openai.com") as tls:
            tls.sendall(b"GET /echo HTTP/1.1\r\nHost: api.openai.com\r\nConnection: close\r\n\r\n")
            report.add("proxy_reflection", read_rest(tls))
    except (OSError, ssl.SSLError) as exc:
        report.add("proxy_reflection", note=str(exc))


# -- the kernel: mounts, namespaces, ptrace, the terminal --------------------------
def syscalls(report: Report, cfg: dict) -> None:
    def call(channel: str, name: str, *args) -> None:
        fn = getattr(libc, name)
        rc = fn(*args)
        err = ctypes.get_errno()
        report.add(channel, breach=rc == 0, note=f"{name}{args!r} -> {rc} ({os.strerror(err) if rc else 'ok'})")

    ms_remount, ms_bind, ms_rdonly = 32, 4096, 1
    call("mount", "mount", b"none", b"/usr", None, ms_remount | ms_bind, None)
    call("mount", "mount", b"none", b"/tmp", b"tmpfs", 0, None)
    call("mount", "mount", b"/", b"/tmp", None, ms_bind | ms_rdonly, None)
    call("mount", "umount2", b"/tmp", 2)
    call("mount", "umount2", b"/usr", 2)
    call("mount", "umount2", b"/proc", 2)
    for flag in (0x10000000, 0x10000000 | 0x00020000):  # CLONE_NEWUSER, + CLONE_NEWNS
        call("user_namespace", "unshare", flag)
    libc.ptrace.argtypes = (ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p)
    call("ptrace", "ptrace", 16, cfg["broker_pid"], None, None)  # PTRACE_ATTACH
    call("ptrace", "ptrace", 0x4206, cfg["broker_pid"], None, None)  # PTRACE_SEIZE
    for fd in (0, 1, 2):
        try:
            fcntl.ioctl(fd, termios.TIOCSTI, b"x")
            report.add("tiocsti", breach=True, note=f"fd {fd}: injected")
        except OSError as exc:
            report.add("tiocsti", note=f"fd {fd}: {exc.strerror}")
    try:
        fd = os.open("/dev/tty", os.O_RDWR)
        try:
            fcntl.ioctl(fd, termios.TIOCSTI, b"x")
            report.add("tiocsti", breach=True, note="/dev/tty: injected")
        finally:
            os.close(fd)
    except OSError as exc:
        report.add("tiocsti", note=f"/dev/tty: {exc.strerror}")


def main() -> None:
    cfg = json.load(open(sys.argv[1]))
    report = Report()
    for step in (vault_paths, broker, direct, unix_sockets, proxy, syscalls):
        try:
            step(report, cfg)
        except Exception as exc:  # noqa: BLE001 - a failed step is reported, the others still run
            report.add("errors", note=f"{step.__name__}: {type(exc).__name__}: {exc}")
    try:
        search(report)
    except Exception as exc:  # noqa: BLE001
        report.add("errors", note=f"search: {type(exc).__name__}: {exc}")
    with open(sys.argv[2], "w") as f:
        json.dump(report.channels, f)


if __name__ == "__main__":
    main()
