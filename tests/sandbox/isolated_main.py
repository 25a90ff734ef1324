"""``run_isolated`` as a process, the way the CLI calls it: ``isolated_main.py OPTIONS_JSON -- CMD ARGS``.

No routes (the proxy runs, nothing is injected): these tests are about the
sandbox itself. Errors are printed as the CLI prints them, and the exit code
is the error's.
"""

from __future__ import annotations

import json
import sys

from authsome.errors import AuthsomeError
from authsome.sandbox.runner import run_isolated


def main() -> int:
    options = json.loads(sys.argv[1])
    cmd = sys.argv[3:] if sys.argv[2] == "--" else sys.argv[2:]
    try:
        return run_isolated(
            cmd,
            [],
            home=options["home"],
            binds=options.get("binds", []),
            ro_binds=options.get("ro_binds", []),
            egress=options.get("egress", "all"),
        )
    except AuthsomeError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"Hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
