"""The child's environment: proxy, trust, placeholders, nothing that unlocks authsome."""

from __future__ import annotations

import os

from authsome.proxy.childenv import CA_BUNDLE_VARS, build_ca_bundle, build_child_env
from authsome.proxy.routes import PLACEHOLDER, Route

URL = "http://authsome:pw@127.0.0.1:5555"


def make_env(base):
    route = Route("openai", "default", ["api.openai.com"], lambda: None, env_vars=["OPENAI_API_KEY"])
    return build_child_env(base, proxy_url=URL, ca_bundle_path="/run/bundle.pem", routes=[route])


def test_machine_ca_presets_are_overwritten_and_cert_dir_removed():
    # This machine presets several of these; the child must see only the run's bundle.
    env = make_env(
        dict(os.environ, SSL_CERT_FILE="/etc/ssl/x.pem", REQUESTS_CA_BUNDLE="/x", SSL_CERT_DIR="/etc/ssl/certs")
    )
    for name in CA_BUNDLE_VARS:
        assert env[name] == "/run/bundle.pem"
    assert "SSL_CERT_DIR" not in env


def test_proxy_variables_both_cases_and_no_proxy_for_loopback():
    env = make_env({"NO_PROXY": "api.openai.com", "https_proxy": "http://corp:3128"})
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        assert env[name] == URL
    assert env["NO_PROXY"] == env["no_proxy"] == "localhost,127.0.0.1,::1"


def test_placeholders_and_removed_secrets():
    env = make_env(
        {
            "OPENAI_API_KEY": "sk-real",
            "AUTHSOME_PASSPHRASE": "p",
            "AUTHSOME_HOME": "/h",
            "VAULT_TOKEN": "t",
            "BAO_TOKEN": "t",
            "PATH": "/bin",
        }
    )
    assert env["OPENAI_API_KEY"] == PLACEHOLDER
    assert not [k for k in env if k.startswith(("AUTHSOME_", "VAULT_", "BAO_"))]
    assert env["PATH"] == "/bin"


def test_node_options_keep_user_options_and_add_preload():
    env = make_env({"NODE_OPTIONS": "--max-old-space-size=100"})
    assert env["NODE_OPTIONS"].startswith("--max-old-space-size=100 --require ")
    assert env["NODE_OPTIONS"].endswith('node_preload.js"')


def test_bundle_has_system_extra_and_run_ca(tmp_path):
    extra = tmp_path / "corp.pem"
    extra.write_bytes(b"-----BEGIN CERTIFICATE-----\nCORP\n-----END CERTIFICATE-----\n")
    bundle = build_ca_bundle(b"-----BEGIN CERTIFICATE-----\nRUN\n-----END CERTIFICATE-----\n", str(extra))
    assert b"CORP" in bundle and b"RUN" in bundle
    assert bundle.count(b"BEGIN CERTIFICATE") > 3  # the system store is there too
    assert b"PRIVATE KEY" not in bundle
