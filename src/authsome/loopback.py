"""Is a host a loopback address? The only place plain ``http:`` is ever accepted (local servers, tests)."""

from __future__ import annotations


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and any loopback IP address (127.0.0.0/8, ``::1``, bracketed or not)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    import ipaddress  # lazy: only URL checks need it, never `authsome run`

    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
