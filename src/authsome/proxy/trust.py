"""Trust for the proxy's upstream connections: the system's CAs plus an optional extra bundle."""

from __future__ import annotations

import os
import ssl


def _load_system_trust(ctx: ssl.SSLContext) -> None:
    """The system trust store, looked up on demand where the platform allows it.

    OpenSSL reads a CA *file* whole (Debian's: 144 certificates, ~2.5 MiB and
    ~35 ms here), but a hashed CA *directory* certificate by certificate as
    chains need them. So the directory alone is used when it is the system's
    and is populated; an explicit SSL_CERT_FILE, or a platform without such a
    directory, gets the usual full load.
    """
    paths = ssl.get_default_verify_paths()
    explicit_file = os.environ.get(paths.openssl_cafile_env)
    capath = paths.capath
    if not explicit_file and capath and _has_hashed_certs(capath):
        ctx.load_verify_locations(capath=capath)
    else:
        ctx.load_default_certs()


def _has_hashed_certs(directory: str) -> bool:
    try:
        with os.scandir(directory) as entries:
            return any(len(e.name) == 10 and e.name[8:] == ".0" for e in entries)
    except OSError:
        return False


def upstream_context(extra_ca_bundle: str | None = None) -> ssl.SSLContext:
    """Verified client TLS: the system trust store plus an optional extra bundle."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verification and hostname checks on
    _load_system_trust(ctx)
    if extra_ca_bundle:
        ctx.load_verify_locations(cafile=extra_ca_bundle)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
