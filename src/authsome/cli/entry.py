"""The ``authsome`` console entry point."""

from __future__ import annotations

import sys


def main() -> None:
    from authsome.cli.app import main as app_main

    sys.exit(app_main())
