"""The isolated egress policy: never a way into the host's own services."""

from __future__ import annotations

import pytest

from authsome.sandbox.egress import check_target, is_host_internal, refusal_message

HOST_INTERNAL = [
    "127.0.0.1",
    "127.1.2.3",
    "::1",
    "0.0.0.0",
    "0.1.2.3",
    "::",
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "::127.0.0.1",
    "::ffff:0.0.0.0",
    "169.254.169.254",
    "169.254.1.1",
    "fe80::1",
    "fe80::1%lo",
    "fd00:ec2::254",
    "100.100.100.200",
    "::ffff:169.254.169.254",
    "not-an-address",
]
EXTERNAL = ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "8.8.8.8", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", HOST_INTERNAL)
def test_host_internal_addresses_are_refused(address):
    assert is_host_internal(address)
    assert not check_target("example.test", 443, address, matched=False, egress="all")


@pytest.mark.parametrize("address", EXTERNAL)
def test_external_addresses_are_allowed_with_egress_all(address):
    assert not is_host_internal(address)
    assert check_target("example.test", 443, address, matched=False, egress="all")


@pytest.mark.parametrize("address", EXTERNAL)
def test_egress_providers_refuses_every_unmatched_target(address):
    assert not check_target("example.test", 443, address, matched=False, egress="providers")


@pytest.mark.parametrize("egress", ["all", "providers"])
def test_matched_provider_hosts_connect_as_configured(egress):
    # Tests resolve provider hosts to loopback; a matched host is not second-guessed.
    assert check_target("api.openai.com", 443, "127.0.0.1", matched=True, egress=egress)


def test_an_address_of_a_local_interface_is_host_internal():
    import socket

    # Whatever non-loopback address this machine has (none inside a bare network namespace).
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing address
            local = s.getsockname()[0]
    except OSError:
        pytest.skip("no non-loopback IPv4 route on this machine")
    assert is_host_internal(local)
    assert not check_target("example.test", 80, local, matched=False, egress="all")


def test_unknown_egress_policy_is_an_error():
    with pytest.raises(ValueError):
        check_target("h", 1, "8.8.8.8", matched=False, egress="some")


def test_refusal_messages_name_the_target_and_the_reason():
    assert "--egress providers" in refusal_message("x.test", 443, "providers")
    assert "x.test:443" in refusal_message("x.test", 443, "all")
