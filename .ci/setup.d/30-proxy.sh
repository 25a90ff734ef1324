#!/usr/bin/env bash
# Proxy tests (tests/proxy, tests/e2e/proxy): curl, iproute2 (ip), util-linux (unshare),
# Node >= 20 for the fetch preload test, openssl for the CA tests, nginx for bench/proxy. Idempotent.
# The e2e tests run every client inside `unshare -m -n` (a private network + mount
# namespace, loopback only). If that does not work here, fail loudly: never skip them.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
missing=()
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)  # tests/proxy/test_ca.py: openssl verify
command -v nginx >/dev/null 2>&1 || missing+=(nginx)  # bench/proxy (not the tests): the HTTPS upstream
if [ ${#missing[@]} -gt 0 ]; then
    if declare -F apt_install >/dev/null; then
        apt_install "${missing[@]}" ca-certificates
    else
        apt-get install -y -qq --no-install-recommends "${missing[@]}" ca-certificates
    fi
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
    echo "30-proxy.sh: Node >= 20 is needed for the fetch preload test (found $(node --version))" >&2
    exit 1
fi
if ! unshare -m -n sh -c 'ip link set lo up && mount --bind /etc/hosts /etc/hosts'; then
    echo "30-proxy.sh: 'unshare -m -n' (private network + mount namespace) does not work here." >&2
    echo "The proxy e2e tests need it: run as root, or allow unprivileged user namespaces." >&2
    exit 1
fi
echo "30-proxy.sh: unshare -m -n works; curl, ip, openssl and node $(node --version) present"
