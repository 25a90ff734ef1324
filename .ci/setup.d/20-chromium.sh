# Headless Chromium for the browser-form tests (tests/secret_input/), from Debian.
# Sourced by .ci/run after `apt-get update`; idempotent. Playwright drives this
# binary via executable_path; no browser is ever downloaded.
if ! /usr/bin/chromium --version >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-liberation
fi
/usr/bin/chromium --version
