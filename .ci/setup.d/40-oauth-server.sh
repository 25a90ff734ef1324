#!/bin/sh
# The real authorization server for the OAuth tests (tests/oauth, tests/e2e/oauth):
# Node's oidc-provider 9 from npm, which needs Node >= 20.19. Run from the repository
# root by scripts/setup after `apt-get update`; idempotent (npm ci only when the lock
# file changed). In CI the tests fail, never skip, when this server cannot start.

missing=""
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing ca-certificates || exit 1
fi
if ! node -e '
  const [major, minor] = process.versions.node.split(".").map(Number);
  process.exit(major > 20 || (major === 20 && minor >= 19) ? 0 : 1);
'; then
    echo "40-oauth-server.sh: oidc-provider 9 needs Node >= 20.19 (found $(node --version))" >&2
    exit 1
fi
dir=tests/oauth_server
stamp="$dir/node_modules/.authsome-lock-sha256"
want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || exit 1
    echo "$want" > "$stamp"
fi
version=$(cd "$dir" && node -p 'require("./node_modules/oidc-provider/package.json").version') || exit 1
echo "40-oauth-server.sh: node $(node --version), oidc-provider $version"
