#!/bin/sh
# run --isolate tests: bubblewrap, setpriv (util-linux), and an unprivileged user
# the hostile-child suite also runs as. Idempotent. If bubblewrap cannot build a
# sandbox here (user namespaces denied), fail loudly: those tests must never be skipped.

command -v bwrap >/dev/null 2>&1 || \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends bubblewrap || exit 1
command -v setpriv >/dev/null 2>&1 || \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends util-linux || exit 1
id authsome-test >/dev/null 2>&1 || useradd --create-home --shell /bin/sh authsome-test || exit 1
# The [user] tests run this checkout's code as authsome-test: every directory above it must be
# traversable by others (a checkout under a 0700 `mktemp -d` directory is not). Run from the repo root.
dir=$(pwd)
while :; do
    if ! setpriv --reuid=authsome-test --regid=authsome-test --clear-groups -- test -x "$dir"; then
        echo "60-bubblewrap.sh: making $dir traversable (o+x) so authsome-test can reach the checkout"
        chmod o+x "$dir" || exit 1
    fi
    [ "$dir" = "/" ] && break
    dir=$(dirname "$dir")
done
if ! bwrap --unshare-all --unshare-user --disable-userns --cap-drop ALL --die-with-parent --new-session \
        --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 \
        --proc /proc --dev /dev -- /usr/bin/true; then
    echo "60-bubblewrap.sh: bubblewrap cannot build a sandbox here (as root)." >&2
    exit 1
fi
if ! setpriv --reuid=authsome-test --regid=authsome-test --clear-groups -- \
        bwrap --unshare-all --unshare-user --disable-userns --ro-bind /usr /usr --symlink usr/bin /bin \
        --symlink usr/lib /lib --symlink usr/lib64 /lib64 --proc /proc --dev /dev -- /usr/bin/true; then
    echo "60-bubblewrap.sh: bubblewrap cannot build a sandbox as an unprivileged user (user namespaces denied?)." >&2
    exit 1
fi
echo "60-bubblewrap.sh: $(bwrap --version) builds sandboxes as root and as authsome-test"
