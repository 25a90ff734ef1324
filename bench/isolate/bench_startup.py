"""What ``--isolate`` adds to ``authsome run -- true`` (issue 6: at most 15 ms).

Two measurements, side by side, on this machine:

1. in-process: ``run_with_proxy(["true"], [])`` against ``run_isolated(["true"], [])``,
   alternated, N rounds each, after warm-up: the sandbox's own cost, without
   interpreter start-up noise;
2. whole command: ``authsome run -- true`` against ``authsome run --isolate -- true``
   (when the CLI has ``--isolate``), each a fresh process, as a user runs it.

Prints medians, 10th/90th percentiles and the difference of the medians, and
the command that reproduces them. Run as any user for whom ``authsome doctor``
says --isolate works (root in CI).

    .venv/bin/python bench/isolate/bench_startup.py [--rounds N]

As an unprivileged user (the venv's interpreter may live under /root):

    setpriv --reuid=authsome-test --regid=authsome-test --clear-groups env \
        PYTHONPATH=src:.venv/lib/python3.11/site-packages /usr/bin/python3 bench/isolate/bench_startup.py
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


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p10 = ordered[int(0.1 * (len(ordered) - 1))]
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    return (
        f"min {ordered[0] * 1000:7.2f} ms  median {statistics.median(ordered) * 1000:7.2f}  "
        f"p10 {p10 * 1000:7.2f}  p90 {p90 * 1000:7.2f}"
    )


def added(plain: list[float], isolated: list[float]) -> str:
    median = statistics.median(isolated) - statistics.median(plain)
    best = min(isolated) - min(plain)
    return f"median {median * 1000:7.2f} ms  min {best * 1000:7.2f} ms"


def in_process(rounds: int, home: str) -> tuple[list[float], list[float]]:
    from authsome.proxy.runner import run_with_proxy
    from authsome.sandbox.runner import run_isolated

    plain, isolated = [], []
    devnull = os.open(os.devnull, os.O_WRONLY)
    for i in range(rounds + 3):
        for samples, run in (
            (plain, lambda: run_with_proxy(["true"], [])),
            (isolated, lambda: run_isolated(["true"], [], home=home)),
        ):
            start = time.perf_counter()
            status = run()
            elapsed = time.perf_counter() - start
            assert status == 0, status
            if i >= 3:  # warm-up rounds are not counted
                samples.append(elapsed)
    os.close(devnull)
    return plain, isolated


def cli_has_isolate(authsome: str) -> bool:
    done = subprocess.run([authsome, "run", "--help"], capture_output=True, text=True)
    return "--isolate" in done.stdout


def whole_command(rounds: int, authsome: str, env: dict) -> tuple[list[float], list[float]]:
    plain, isolated = [], []
    for i in range(rounds + 2):
        for samples, argv in (
            (plain, [authsome, "run", "--", "true"]),
            (isolated, [authsome, "run", "--isolate", "--", "true"]),
        ):
            start = time.perf_counter()
            subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
            if i >= 2:
                samples.append(time.perf_counter() - start)
    return plain, isolated


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    from authsome.sandbox.availability import probe

    ok, detail = probe()
    if not ok:
        raise SystemExit(f"--isolate does not work here: {detail}")
    work = tempfile.mkdtemp(prefix="authsome-bench-")
    home = os.path.join(work, "home")
    os.makedirs(os.path.join(work, "project"))
    os.chdir(os.path.join(work, "project"))
    print(f"bench/isolate: {args.rounds} rounds, {os.cpu_count()} CPUs, uid {os.getuid()}, {detail.split(':')[0]}")
    sys.stdout.flush()
    plain, isolated = in_process(args.rounds, home)
    print(f"  in-process run_with_proxy(['true'])  {percentiles(plain)}")
    print(f"  in-process run_isolated(['true'])    {percentiles(isolated)}")
    print(f"  added by --isolate                   {added(plain, isolated)}")
    authsome = str(Path(sys.executable).with_name("authsome"))
    if os.path.exists(authsome) and cli_has_isolate(authsome):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["AUTHSOME_HOME"] = home
        # `run` needs a connected provider: a sample key through the opt-in --stdin import.
        subprocess.run(
            [authsome, "login", "openai", "--stdin"],
            input="sk-bench" + "0" * 30 + "\n",
            text=True,
            env=env,
            check=True,
            capture_output=True,
        )
        plain, isolated = whole_command(max(10, args.rounds // 2), authsome, env)
        print(f"  authsome run -- true                 {percentiles(plain)}")
        print(f"  authsome run --isolate -- true       {percentiles(isolated)}")
        print(f"  added by --isolate                   {added(plain, isolated)}")
    else:
        print("  (the CLI has no --isolate yet: whole-command figures skipped)")
    print(
        f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())} (figures are only meaningful on an idle machine)"
    )
    print(f"reproduce: cd {ROOT} && .venv/bin/python bench/isolate/bench_startup.py --rounds {args.rounds}")


if __name__ == "__main__":
    main()
