"""The ``authsome`` console entry point."""

from __future__ import annotations

import os
import sys


def main() -> None:
    argv = sys.argv[1:]
    if argv and argv[0] in ("get", "list", "run") and os.environ.get("AUTHSOME_NO_FASTPATH") != "1":
        if argv[0] == "run":
            from authsome.cli.fast_run import run  # ends the process itself when it handles argv
        else:
            from authsome.cli.fast import run

        code = run(argv)
        if code is not None:
            sys.exit(code)
    from authsome.cli.app import main as app_main

    sys.exit(app_main())
