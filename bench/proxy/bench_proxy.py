"""Proxy benchmark: direct vs the authsome proxy vs mitmdump, against a local nginx over HTTPS.

One load client (this script; one process per connection, each a blocking
TLS socket doing keep-alive GETs) drives all three paths. With 2 CPUs the
client and nginx are pinned to CPU 0 and the proxy under test to CPU 1.
Also measured: CPU time and peak RSS of each proxy, per-chunk SSE delay
compared with a direct connection, and the wall time of a run of `true`.

Reproduce (mitmdump comes from its own venv, never the project's):
    python3 -m venv /tmp/bench-mitm-venv && /tmp/bench-mitm-venv/bin/pip install mitmproxy
    .venv/bin/python bench/proxy/bench_proxy.py [--mitmdump /tmp/bench-mitm-venv/bin/mitmdump] [--seconds 5]
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CLIENT_CPU = {0}
# "split": the proxy under test alone on CPU 1; "same": everything on CPU 0 (no cross-CPU
# wake-ups, which are costly in a VM). Set by --placement.
PROXY_CPU = "1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def write_pki(d: Path) -> tuple[str, str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench CA")])
    span = dict(not_valid_before=now - datetime.timedelta(hours=1), not_valid_after=now + datetime.timedelta(days=1))

    def build(subject, public_key):
        b = x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name).public_key(public_key)
        b = b.serial_number(x509.random_serial_number())
        return b.not_valid_before(span["not_valid_before"]).not_valid_after(span["not_valid_after"])

    ca = build(ca_name, ca_key.public_key()).add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    ca = ca.add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
    ca = ca.sign(ca_key, hashes.SHA256())
    leaf = build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]), key.public_key())
    leaf = leaf.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
    leaf = leaf.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False)
    leaf = leaf.sign(ca_key, hashes.SHA256())
    pem = serialization.Encoding.PEM
    (d / "ca.pem").write_bytes(ca.public_bytes(pem))
    (d / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    fmt, none = serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    (d / "leaf.key").write_bytes(key.private_bytes(pem, fmt, none))
    return str(d / "ca.pem"), str(d / "leaf.pem"), str(d / "leaf.key")


def start_nginx(d: Path, port: int, cert: str, key: str) -> subprocess.Popen:
    conf = d / "nginx.conf"
    conf.write_text(f"""
worker_processes 1; daemon off; user root; pid {d}/nginx.pid; error_log {d}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off; keepalive_requests 10000000; keepalive_timeout 600;
  client_body_temp_path {d}/b; proxy_temp_path {d}/p; fastcgi_temp_path {d}/f; uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;
  server {{
    listen 127.0.0.1:{port} ssl; server_name localhost;
    ssl_certificate {cert}; ssl_certificate_key {key};
    location / {{ default_type application/json; return 200 '{{"ok":true}}'; }}
  }}
}}
""")
    proc = subprocess.Popen(["taskset", "-c", "0", "nginx", "-p", str(d), "-c", str(conf)])
    wait_port(port)
    return proc


# -- the load client -------------------------------------------------------------------
def open_tls(path: dict, up_port: int, cafile: str) -> ssl.SSLSocket:
    if path["proxy_port"] is None:
        sock = socket.create_connection(("127.0.0.1", up_port))
    else:
        sock = socket.create_connection(("127.0.0.1", path["proxy_port"]))
        head = f"CONNECT localhost:{up_port} HTTP/1.1\r\nHost: localhost:{up_port}\r\n"
        if path.get("auth"):
            head += f"Proxy-Authorization: Basic {path['auth']}\r\n"
        sock.sendall((head + "\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(4096)
        assert data.split(b" ")[1] == b"200", data
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx.wrap_socket(sock, server_hostname="localhost")


def one_request(tls: ssl.SSLSocket, request: bytes) -> bytes:
    tls.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        data += tls.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += tls.recv(65536)
    return head


def _worker(path, up_port, cafile, seconds, out):
    os.sched_setaffinity(0, CLIENT_CPU)
    tls = open_tls(path, up_port, cafile)
    request = f"GET /bench HTTP/1.1\r\nHost: localhost:{up_port}\r\nAuthorization: Bearer placeholder\r\n\r\n".encode()
    for _ in range(50):
        one_request(tls, request)
    count, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        one_request(tls, request)
        count += 1
    out.put(count)


def throughput(path, up_port, cafile, connections: int, seconds: float) -> float:
    out = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=_worker, args=(path, up_port, cafile, seconds, out)) for _ in range(connections)
    ]
    for p in procs:
        p.start()
    total = sum(out.get(timeout=seconds + 60) for _ in procs)
    for p in procs:
        p.join()
    return total / seconds


def interleaved_latency(paths: dict, up_port, cafile, rounds: int, per_round: int) -> dict:
    """Per-request latency of every path, measured in alternating rounds.

    On a shared machine the speed drifts over seconds; timing the paths in
    turns (rotating which goes first) lets each see the same conditions, so
    the ratio of added latency to direct latency is not an artefact of drift.
    """
    request = f"GET /bench HTTP/1.1\r\nHost: localhost:{up_port}\r\nAuthorization: Bearer placeholder\r\n\r\n".encode()
    conns = {name: open_tls(path, up_port, cafile) for name, path in paths.items()}
    for tls in conns.values():
        for _ in range(200):
            one_request(tls, request)
    samples: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            tls, times = conns[name], samples[name]
            for _ in range(per_round):
                t = time.perf_counter()
                one_request(tls, request)
                times.append(time.perf_counter() - t)
    for tls in conns.values():
        tls.close()
    result = {}
    for name, times in samples.items():
        times.sort()
        result[name] = {"median_us": statistics.median(times) * 1e6, "p99_us": times[int(len(times) * 0.99)] * 1e6}
    return result


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_memory_kib(pid: int) -> dict:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {k: int(status[k].split()[0]) for k in ("VmRSS", "VmHWM")}


# -- SSE ------------------------------------------------------------------------------
def sse_delays(path, sse_port, cafile) -> list[float]:
    """Per chunk: arrival time minus the upstream's send stamp (seconds)."""
    tls = open_tls(path, sse_port, cafile)
    tls.sendall(f"GET /stream HTTP/1.1\r\nHost: localhost:{sse_port}\r\nConnection: close\r\n\r\n".encode())
    delays, buf = [], b""
    while True:
        data = tls.recv(65536)
        now = time.time()
        if not data:
            break
        buf += data
        for line in buf.split(b"\n")[:-1]:
            if b" sent " in line:
                delays.append(now - float(line.rsplit(b" ", 1)[1]))
        buf = buf.split(b"\n")[-1]
    return delays


def start_sse_upstream(port: int, cert: str, key: str, d: Path) -> subprocess.Popen:
    code = (
        "import asyncio, sys; sys.path.insert(0, sys.argv[1]); from upstream import Upstream\n"
        "async def main():\n"
        "    u = Upstream(sys.argv[2], sys.argv[3], sys.argv[4]); await u.start(int(sys.argv[5]), int(sys.argv[6]))\n"
        "    await asyncio.Event().wait()\n"
        "asyncio.run(main())\n"
    )
    args = [str(ROOT / "tests/e2e/proxy"), cert, key, str(d / "sse.jsonl"), str(port), str(free_port())]
    proc = subprocess.Popen(["taskset", "-c", "0", sys.executable, "-c", code, *args])
    wait_port(port)
    return proc


# -- startup ----------------------------------------------------------------------------
def run_true_wall(repeats: int = 10) -> dict:
    code = (
        "import time; t = time.perf_counter()\n"
        "from authsome.proxy.routes import Route\nfrom authsome.proxy.runner import run_with_proxy\n"
        "r = Route('openai', 'default', ['api.openai.com'], lambda: None, env_vars=['OPENAI_API_KEY'])\n"
        "run_with_proxy(['true'], [r]); print(time.perf_counter() - t)\n"
    )
    os.sched_setaffinity(0, range(os.cpu_count()))  # a run is not pinned: let it use both CPUs
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    # As installed: modules load from bytecode caches (some shells set PYTHONDONTWRITEBYTECODE).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, check=True)  # writes the caches
    process_walls, inner = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        process_walls.append(time.perf_counter() - t)
        inner.append(float(out.stdout))
    result = {"process_ms": statistics.median(process_walls) * 1e3, "in_process_ms": statistics.median(inner) * 1e3}
    cli = shutil.which("authsome", path=str(ROOT / ".venv/bin"))
    if cli:
        # A throwaway home with one connected provider (file key source: no keyring prompt).
        home = tempfile.mkdtemp(prefix="authsome-bench-home-")
        cli_env = dict(env, AUTHSOME_HOME=home)
        subprocess.run([cli, "init", "--key-source", "file"], env=cli_env, capture_output=True, check=True)
        subprocess.run(
            [cli, "login", "openai", "--stdin"],
            input=b"sk-bench0123456789abcdefghijkl",
            env=cli_env,
            capture_output=True,
            check=True,
        )
        walls = []
        for _ in range(repeats):
            t = time.perf_counter()
            done = subprocess.run([cli, "run", "--", "true"], capture_output=True, env=cli_env)
            walls.append(time.perf_counter() - t)
        result["cli_ms"] = statistics.median(walls) * 1e3
        result["cli_exit"] = done.returncode
        shutil.rmtree(home, ignore_errors=True)
    return result


BENCH_PROVIDER = {
    "schema_version": 2,
    "name": "benchlocal",
    "display_name": "Bench (localhost)",
    "auth_type": "api_key",
    "flow": "api_key",
    "hosts": ["localhost"],
    "api_key": {"header_name": "Authorization", "header_prefix": "Bearer", "env_var": "BENCH_API_KEY"},
}


def measure_paths(paths: dict, up_port: int, sse_port: int, cafile: str, args) -> dict:
    """The load client's part: every path measured by this same code."""
    report = {"cpus": os.cpu_count(), "placement": args.placement, "load_average": os.getloadavg(), "paths": {}}
    rounds = max(1, args.requests // 200)
    latencies = interleaved_latency(paths, up_port, cafile, rounds, 200)
    for name, path in paths.items():
        row = {"latency": latencies[name]}
        for conns in (1, 4):
            cpu_before = proc_cpu_seconds(path["pid"]) if path["pid"] else 0.0
            rps = throughput(path, up_port, cafile, conns, args.seconds)
            row[f"rps_{conns}conn"] = rps
            if path["pid"]:
                used = proc_cpu_seconds(path["pid"]) - cpu_before
                row[f"proxy_cpu_us_per_req_{conns}conn"] = used / (rps * args.seconds) * 1e6
        if path["pid"]:
            row["memory_kib"] = proc_memory_kib(path["pid"])
        if name != "passthrough":  # it relays one read per request: no streams
            row["sse_delay_ms"] = [round(x * 1e3, 2) for x in sse_delays(path, sse_port, cafile)]
        report["paths"][name] = row
    direct_sse = report["paths"]["direct"]["sse_delay_ms"]
    for row in report["paths"].values():
        if "sse_delay_ms" in row:
            row["sse_extra_vs_direct_ms"] = [
                round(a - b, 2) for a, b in zip(row["sse_delay_ms"], direct_sse, strict=False)
            ]
    return report


def inner_main(args) -> None:
    """Runs as the child of `authsome run`: the proxy is our parent, its address in HTTPS_PROXY."""
    import base64
    from urllib.parse import urlsplit

    os.sched_setaffinity(0, CLIENT_CPU)
    proxy = urlsplit(os.environ["HTTPS_PROXY"])
    assert os.environ["BENCH_API_KEY"] == "authsome-proxy-managed"  # the child never holds the key
    credentials = base64.b64encode(f"{proxy.username}:{proxy.password}".encode()).decode()
    paths = {
        "direct": {"proxy_port": None, "pid": None},
        "authsome": {"proxy_port": proxy.port, "pid": os.getppid(), "auth": credentials},
    }
    if args.mitm_port:
        paths["mitmdump"] = {"proxy_port": args.mitm_port, "pid": args.mitm_pid}
    if args.floor_port:
        paths["passthrough"] = {"proxy_port": args.floor_port, "pid": args.floor_pid}
    # The run's bundle (its CA + AUTHSOME_CA_BUNDLE, i.e. the bench CA) plus mitmproxy's CA.
    bundle = Path(args.workdir) / "client-bundle.pem"
    parts = [os.environ["SSL_CERT_FILE"]] + ([args.mitm_ca] if args.mitm_port else [])
    parts += [args.floor_ca] if args.floor_port else []
    bundle.write_bytes(b"".join(Path(p).read_bytes() for p in parts))
    report = measure_paths(paths, args.up_port, args.sse_port, str(bundle), args)
    Path(args.report).write_text(json.dumps(report))


def bench_home(d: Path, ca: str) -> dict:
    """A throwaway authsome home with a provider for ``localhost`` and a key for it."""
    cli = str(ROOT / ".venv/bin/authsome")
    env = dict(os.environ, AUTHSOME_HOME=str(d / "home"), AUTHSOME_CA_BUNDLE=ca)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: modules load from bytecode caches
    definition = d / "benchlocal.json"
    definition.write_text(json.dumps(BENCH_PROVIDER))
    for argv, stdin in (
        ([cli, "init", "--key-source", "file"], None),
        ([cli, "register", str(definition)], None),
        ([cli, "login", "benchlocal", "--stdin"], b"sk-bench-0123456789abcdef0123"),
    ):
        subprocess.run(argv, input=stdin, env=env, capture_output=True, check=True)
    return env


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mitmdump", default="/tmp/bench-mitm-venv/bin/mitmdump")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--placement", choices=["split", "same"], default="split")
    # Internal: the client phase, run as the child of `authsome run`.
    parser.add_argument("--floor", action="store_true", help="also measure passthrough.py (no HTTP work)")
    for name in ("--inner-report", "--workdir", "--mitm-ca", "--floor-ca"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    for name in ("--up-port", "--sse-port", "--mitm-port", "--mitm-pid", "--floor-port", "--floor-pid"):
        parser.add_argument(name, type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    global PROXY_CPU
    PROXY_CPU = "1" if args.placement == "split" else "0"
    if args.inner_report:
        args.report = args.inner_report
        inner_main(args)
        return
    os.sched_setaffinity(0, CLIENT_CPU)
    d = Path(tempfile.mkdtemp(prefix="authsome-bench-"))
    procs: list[subprocess.Popen] = []
    try:
        ca, cert, key = write_pki(d)
        up_port, sse_port = free_port(), free_port()
        procs.append(start_nginx(d, up_port, cert, key))
        procs.append(start_sse_upstream(sse_port, cert, key, d))
        inner = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--inner-report",
            str(d / "report.json"),
            "--workdir",
            str(d),
            "--up-port",
            str(up_port),
            "--sse-port",
            str(sse_port),
            "--seconds",
            str(args.seconds),
            "--requests",
            str(args.requests),
            "--placement",
            args.placement,
        ]
        if os.path.exists(args.mitmdump):
            mitm_port, confdir = free_port(), d / "mitm"
            mitm = subprocess.Popen(
                [
                    "taskset",
                    "-c",
                    PROXY_CPU,
                    args.mitmdump,
                    "-q",
                    "--listen-host",
                    "127.0.0.1",
                    "-p",
                    str(mitm_port),
                    "--set",
                    f"confdir={confdir}",
                    "--set",
                    f"ssl_verify_upstream_trusted_ca={ca}",
                    "-s",
                    str(HERE / "mitm_inject.py"),
                ],
            )
            procs.append(mitm)
            wait_port(mitm_port)
            inner += ["--mitm-port", str(mitm_port), "--mitm-pid", str(mitm.pid)]
            inner += ["--mitm-ca", str(confdir / "mitmproxy-ca-cert.pem")]
        if args.floor:
            floor = subprocess.Popen(
                ["taskset", "-c", PROXY_CPU, sys.executable, str(HERE / "passthrough.py"), str(d / "floor-ca.pem"), ca],
                stdout=subprocess.PIPE,
                text=True,
                env=dict(os.environ, PYTHONPATH=str(ROOT / "src")),
            )
            procs.append(floor)
            floor_port = json.loads(floor.stdout.readline())["port"]
            inner += [
                "--floor-port",
                str(floor_port),
                "--floor-pid",
                str(floor.pid),
                "--floor-ca",
                str(d / "floor-ca.pem"),
            ]
        # The authsome path is the real thing: `authsome run` (pinned like the other proxies) whose
        # child is this script's client phase; the proxy is that child's parent process.
        env = bench_home(d, ca)
        cli = str(ROOT / ".venv/bin/authsome")
        subprocess.run(["taskset", "-c", PROXY_CPU, cli, "run", "--", *inner], env=env, check=True)
        report = json.loads((d / "report.json").read_text())
        report["run_true"] = run_true_wall()
        print(json.dumps(report, indent=2))
        summarize(report)
        print(
            f"\nreproduce: .venv/bin/python bench/proxy/bench_proxy.py --mitmdump {args.mitmdump} "
            f"--seconds {args.seconds} --placement {args.placement}"
        )
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(d, ignore_errors=True)


def summarize(report: dict) -> None:
    paths = report["paths"]
    direct, ours = paths["direct"], paths["authsome"]
    added = ours["latency"]["median_us"] - direct["latency"]["median_us"]
    print("\n== summary ==")
    print(
        f"median keep-alive request: direct {direct['latency']['median_us']:.0f} us, "
        f"authsome {ours['latency']['median_us']:.0f} us (added {added:.0f} us = "
        f"{added / direct['latency']['median_us']:.2f}x direct)"
    )
    if "passthrough" in paths:
        floor = paths["passthrough"]["latency"]["median_us"] - direct["latency"]["median_us"]
        print(
            f"floor (passthrough.py, no HTTP work): {paths['passthrough']['latency']['median_us']:.0f} us "
            f"(added {floor:.0f} us = {floor / direct['latency']['median_us']:.2f}x direct)"
        )
    for conns in (1, 4):
        line = f"requests/s with {conns} conn: direct {direct[f'rps_{conns}conn']:.0f}, authsome {ours[f'rps_{conns}conn']:.0f}"
        if "mitmdump" in paths:
            mitm = paths["mitmdump"][f"rps_{conns}conn"]
            line += f", mitmdump {mitm:.0f} (authsome/mitmdump = {ours[f'rps_{conns}conn'] / mitm:.1f}x)"
        print(line)
    for name in ("authsome", "mitmdump"):
        if name in paths:
            row = paths[name]
            print(
                f"{name}: CPU per request {row['proxy_cpu_us_per_req_1conn']:.0f} us (1 conn), "
                f"{row['proxy_cpu_us_per_req_4conn']:.0f} us (4 conn); peak RSS {row['memory_kib']['VmHWM'] / 1024:.1f} MiB"
            )
    print(
        f"SSE extra delay per chunk vs direct (ms): authsome {ours['sse_extra_vs_direct_ms']}"
        + (f", mitmdump {paths['mitmdump']['sse_extra_vs_direct_ms']}" if "mitmdump" in paths else "")
    )
    print(f"run -- true: {report['run_true']}")


if __name__ == "__main__":
    main()
