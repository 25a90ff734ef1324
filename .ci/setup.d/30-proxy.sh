#!/bin/sh
# Proxy e2e tests: curl, iproute2 (ip), util-linux (unshare), Node 20 for the fetch preload.
# The tests run clients inside `unshare -m -n` (private network + mount namespace,
# loopback only); if that does not work here, fail loudly: they must never be skipped.

missing=""
command -v curl >/dev/null 2>&1 || missing="$missing curl"
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
command -v unshare >/dev/null 2>&1 || missing="$missing util-linux"
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
if [ -n "$missing" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing ca-certificates || exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
    echo "30-proxy.sh: Node >= 20 is required for the fetch preload tests (found $(node --version))" >&2
    exit 1
fi
if ! unshare -m -n sh -c 'ip link set lo up && mount --bind /etc/hosts /etc/hosts' ; then
    echo "30-proxy.sh: 'unshare -m -n' (private network + mount namespace) does not work here." >&2
    echo "The proxy e2e tests need it (run as root, or allow unprivileged user namespaces)." >&2
    exit 1
fi
echo "30-proxy.sh: unshare -m -n works; curl, ip, node $(node --version) present"
