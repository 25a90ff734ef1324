"""The egress policy of ``run --isolate``: which targets the proxy may connect to.

Under ``--isolate`` the proxy is the child's only way out, so it must never
become a way into the host's own services: an unmatched target whose address
is loopback, unspecified, link-local (cloud metadata included), IPv4-mapped
or -compatible loopback, or bound to one of this machine's interfaces is
refused. The check is made on the address the proxy is about to connect to,
after resolution, so a name that re-resolves to loopback (DNS rebinding)
gains nothing. With ``egress="providers"`` only matched provider hosts are
reachable at all.
"""

from __future__ import annotations

import ipaddress
import socket

EGRESS_CHOICES = ("all", "providers")

# Cloud metadata services that are not link-local (AWS over IPv6, Alibaba).
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200", "169.254.169.254")
)
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # connecting to 0.x.y.z reaches this host on Linux
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d) or -compatible (::a.b.c.d) one."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr in _IPV4_COMPATIBLE and int(addr) > 1:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def is_host_internal(address: str) -> bool:
    """True when connecting to ``address`` would reach this machine or its metadata service.

    A string that is not an IP address is treated as internal: the caller
    must pass the resolved address, never a name.
    """
    try:
        addr = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(addr, ipaddress.IPv6Address):
        inner = _embedded_ipv4(addr)
        if inner is not None:
            addr = inner
        elif addr.is_loopback or addr.is_unspecified or addr.is_link_local or addr in _METADATA_ADDRESSES:
            return True
    if isinstance(addr, ipaddress.IPv4Address) and (
        addr.is_loopback or addr.is_unspecified or addr.is_link_local or addr in _THIS_NETWORK
    ):
        return True
    if addr in _METADATA_ADDRESSES:
        return True
    return is_local_interface_address(str(addr))


def is_local_interface_address(address: str) -> bool:
    """True when ``address`` belongs to one of this machine's interfaces.

    The kernel is the authority: binding a socket to an address succeeds only
    when the address is local (we never set IP_FREEBIND here).
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        probe = socket.socket(family, socket.SOCK_DGRAM)
    except OSError:
        return False
    try:
        probe.bind((address, 0))
    except OSError:
        return False
    else:
        return True
    finally:
        probe.close()


def check_target(host: str, port: int, resolved_addr: str, matched: bool, egress: str) -> bool:
    """Whether the isolated proxy may connect to ``resolved_addr`` for ``host:port``.

    ``matched``: the host is one a selected provider serves (connected as
    configured, even when a test resolves it to loopback). ``egress``: ``"all"``
    (unmatched hosts are tunnelled) or ``"providers"`` (they are refused).
    Call it with the address actually about to be connected to.
    """
    if egress not in EGRESS_CHOICES:
        raise ValueError(f"unknown egress policy {egress!r}")
    if matched:
        return True
    if egress == "providers":
        return False
    return not is_host_internal(resolved_addr)


def refusal_message(host: str, port: int, egress: str) -> str:
    """What the child is told (403 body) when a target is refused; names no address."""
    if egress == "providers":
        return (
            f"authsome proxy: {host}:{port} is not a host of a selected provider, and this run allows "
            "only provider hosts (--egress providers)."
        )
    return (
        f"authsome proxy: {host}:{port} is refused: it resolves to this machine or its local network "
        "services (or not at all), which an isolated run cannot reach through the proxy."
    )
