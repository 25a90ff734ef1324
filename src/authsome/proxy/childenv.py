"""The environment of a child started by ``authsome run``.

The child learns where the proxy is and whom to trust, and gets placeholders
instead of credentials. Whatever unlocks authsome itself (a passphrase, a
Vault/OpenBao token, other ``AUTHSOME_*`` settings) is removed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from authsome.proxy.routes import PLACEHOLDER, Route

#: Variables that point common runtimes at a CA bundle file.
CA_BUNDLE_VARS = (
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "NODE_EXTRA_CA_CERTS",
    "AWS_CA_BUNDLE",
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    "HTTPLIB2_CA_CERTS",
    # Beyond DESIGN.md's list: other tools that read a bundle path (some preset on CI images).
    "NIX_SSL_CERT_FILE",
    "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
    "PIP_CERT",
    "DENO_CERT",
    "CARGO_HTTP_CAINFO",
)
#: Removed: a directory of CAs would be used instead of, or beside, the bundle.
REMOVED_VARS = ("SSL_CERT_DIR",)
#: Prefixes of variables that must never reach the child.
REMOVED_PREFIXES = ("AUTHSOME_", "VAULT_", "BAO_")
PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")
NO_PROXY_VALUE = "localhost,127.0.0.1,::1"
PRELOAD_PATH = Path(__file__).with_name("node_preload.js")


#: Where distributions keep the system CA bundle (Debian/Ubuntu, Fedora/RHEL, openSUSE, Alpine/macOS/BSD).
#: Looked at before asking ``ssl``, whose import would delay every run's child by several milliseconds.
WELL_KNOWN_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
)


def _read_first(candidates) -> bytes | None:
    for candidate in candidates:
        if candidate and os.path.isfile(candidate):
            try:
                return Path(candidate).read_bytes()
            except OSError:
                continue
    return None


def system_ca_pem() -> bytes:
    """The CA certificates this process trusts by default (SSL_CERT_FILE, else the system store)."""
    found = _read_first((os.environ.get("SSL_CERT_FILE"), *WELL_KNOWN_BUNDLES))
    if found is not None:
        return found
    import ssl

    paths = ssl.get_default_verify_paths()
    found = _read_first((paths.cafile, paths.openssl_cafile))
    if found is not None:
        return found
    # No bundle file: export what the default context loaded (e.g. from a CA directory).
    ctx = ssl.create_default_context()
    return "".join(ssl.DER_cert_to_PEM_cert(der) for der in ctx.get_ca_certs(binary_form=True)).encode()


def build_ca_bundle(run_ca_pem: bytes, extra_ca_bundle: str | None) -> bytes:
    """System trust + the optional extra bundle + the run's CA, as one PEM file's content."""
    parts = [system_ca_pem()]
    if extra_ca_bundle:
        parts.append(Path(extra_ca_bundle).read_bytes())
    parts.append(run_ca_pem)
    return b"\n".join(part.rstrip(b"\n") + b"\n" for part in parts if part)


def _node_options(existing: str | None) -> str:
    require = f'--require "{PRELOAD_PATH}"'
    return f"{existing} {require}" if existing else require


def build_child_env(
    base: Mapping[str, str],
    *,
    proxy_url: str,
    ca_bundle_path: str,
    routes: list[Route],
) -> dict[str, str]:
    """The child's environment from ``base`` (normally ``os.environ``)."""
    env = {
        key: value for key, value in base.items() if not key.startswith(REMOVED_PREFIXES) and key not in REMOVED_VARS
    }
    for name in PROXY_VARS:
        env[name] = proxy_url
    env["NO_PROXY"] = env["no_proxy"] = NO_PROXY_VALUE
    for name in CA_BUNDLE_VARS:
        env[name] = ca_bundle_path
    env["NODE_OPTIONS"] = _node_options(base.get("NODE_OPTIONS"))
    for route in routes:
        for name in route.env_vars:
            env[name] = PLACEHOLDER
    return env
