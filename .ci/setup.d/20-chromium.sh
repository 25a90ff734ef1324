#!/usr/bin/env bash
# Headless Chromium for the browser-form tests (tests/secret_input/), from Debian.
# Idempotent. Playwright drives /usr/bin/chromium via executable_path; no browser
# is ever downloaded (never `playwright install`).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! /usr/bin/chromium --version >/dev/null 2>&1; then
    if declare -F apt_install >/dev/null; then
        apt_install chromium fonts-liberation
    else
        apt-get install -y -qq --no-install-recommends chromium fonts-liberation
    fi
fi
/usr/bin/chromium --version 2>/dev/null
