"""The per-run CA: leaves chain to it, and its name constraint limits what it can vouch for."""

from __future__ import annotations

import datetime
import ssl

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from authsome.proxy.ca import RunCA, permitted_subtrees


def verify(ca: RunCA, leaf, host: str):
    store = Store([ca.certificate])
    verifier = (
        PolicyBuilder().store(store).time(datetime.datetime.now(datetime.UTC)).build_server_verifier(x509.DNSName(host))
    )
    return verifier.verify(leaf, [])


def test_leaf_chains_to_the_run_ca():
    ca = RunCA(["api.openai.com", "*.googleapis.com"])
    verify(ca, ca.issue_leaf("api.openai.com"), "api.openai.com")
    verify(ca, ca.issue_leaf("www.googleapis.com"), "www.googleapis.com")


def test_name_constraint_refuses_other_hosts():
    ca = RunCA(["api.openai.com"])
    constraint = ca.certificate.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraint.critical
    assert [n.value for n in constraint.value.permitted_subtrees] == ["api.openai.com"]
    with pytest.raises(VerificationError):
        verify(ca, ca.issue_leaf("evil.example"), "evil.example")


def test_permitted_subtrees():
    assert permitted_subtrees(["*.a.example", "b.example", "b.example"]) == ["a.example", "b.example"]


def test_server_context_is_cached_and_speaks_http1():
    ca = RunCA(["api.openai.com"])
    ctx = ca.server_context("api.openai.com")
    assert ca.server_context("api.openai.com") is ctx
    assert isinstance(ctx, ssl.SSLContext)


def test_ca_certificate_pem_holds_no_private_key():
    ca = RunCA(["api.openai.com"])
    assert b"PRIVATE KEY" not in ca.cert_pem
    assert ca.cert_pem.startswith(b"-----BEGIN CERTIFICATE-----")


def test_ip_literal_host_gets_an_ip_san_within_the_constraint():
    ca = RunCA(["10.0.0.5", "api.openai.com"])
    leaf = ca.issue_leaf("10.0.0.5")
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
    store = Store([ca.certificate])
    import ipaddress

    verifier = (
        PolicyBuilder()
        .store(store)
        .time(datetime.datetime.now(datetime.UTC))
        .build_server_verifier(x509.IPAddress(ipaddress.ip_address("10.0.0.5")))
    )
    verifier.verify(leaf, [])
