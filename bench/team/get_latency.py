"""`get` latency: the local vault beside the team backend (a real OpenBao dev server on 127.0.0.1).

Reproduce:  .venv/bin/python bench/team/get_latency.py [--runs N]

cold:   one `authsome get` process per read, as an agent's shell loop does (interpreter start,
        imports, key load or engine connection, then the read)
cached: reads repeated inside one library process (Authsome client kept open: key loaded once,
        the engine's HTTP keep-alive connection reused)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.team.bao_server import DevServer  # noqa: E402

AUTHSOME = str(Path(sys.executable).with_name("authsome"))
KEY = "sk-bench" + "0" * 40


def _env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_", "AUTHSOME_"))}
    env["AUTHSOME_HOME"] = str(home)
    return env


def _run(env, *args, stdin=None) -> str:
    proc = subprocess.run([AUTHSOME, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60)
    if proc.returncode != 0:
        raise SystemExit(f"authsome {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def _cli_ms(env, args, runs) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        _run(env, *args)
        times.append((time.perf_counter() - start) * 1000)
    return times


def _library_ms(home: Path, runs: int) -> list[float]:
    code = (
        "import sys, time\n"
        "from authsome import Authsome\n"
        "client = Authsome(sys.argv[1])\n"
        "client.get_secret('openai')\n"
        "out = []\n"
        "for _ in range(int(sys.argv[2])):\n"
        "    t = time.perf_counter(); client.get_secret('openai'); out.append((time.perf_counter() - t) * 1000)\n"
        "print(' '.join(f'{x:.4f}' for x in out))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(home), str(runs)], capture_output=True, text=True, env=_env(home), timeout=120
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return [float(x) for x in proc.stdout.split()]


def _fmt(times: list[float]) -> str:
    times = sorted(times)
    p90 = times[max(0, int(len(times) * 0.9) - 1)]
    return f"median {statistics.median(times):7.2f} ms   p90 {p90:7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        server = DevServer(tmp / "bao.log")
        try:
            local, team = _env(tmp / "local"), _env(tmp / "team")
            _run(local, "init", "--key-source", "file")
            _run(local, "login", "openai", "--stdin", stdin=KEY + "\n")
            _run(team, "init", "--key-source", "file", "--backend", "openbao", "--url", server.url, "--stdin",
                 stdin=server.root_token + "\n")  # fmt: skip
            _run(team, "login", "openai", "--stdin", stdin=KEY + "\n")
            secret = ["get", "openai", "--field", "api_key", "--show-secret"]
            status = ["get", "openai", "--field", "status"]
            rows = [
                ("local  cold  get --field api_key --show-secret", _cli_ms(local, secret, runs)),
                ("team   cold  get --field api_key --show-secret", _cli_ms(team, secret, runs)),
                ("local  cold  get --field status", _cli_ms(local, status, runs)),
                ("team   cold  get --field status", _cli_ms(team, status, runs)),
                ("local  cached  Authsome.get_secret (in process)", _library_ms(tmp / "local", runs * 10)),
                ("team   cached  Authsome.get_secret (in process)", _library_ms(tmp / "team", runs * 10)),
            ]
        finally:
            server.stop()
    print(f"authsome get latency, {runs} CLI runs / {runs * 10} library reads each (OpenBao dev server, loopback)")
    for label, times in rows:
        print(f"  {label:<50} {_fmt(times)}")
    print("reproduce: .venv/bin/python bench/team/get_latency.py --runs", runs)


if __name__ == "__main__":
    main()
