"""Routes: which connection's credential goes to which host.

A route is built by the library core for each selected connection. It holds
the provider's host patterns and a callable that returns a fresh
``Injection`` (the lookup may decrypt, or refresh an OAuth token near expiry,
so it can block: the proxy calls it off the event loop and keeps the result
only for a few seconds).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

#: What the child sees instead of a real credential.
PLACEHOLDER = "authsome-proxy-managed"

# Long enough to spare the lookup on a burst of requests, short enough that a
# refreshed OAuth token is used soon after the old one nears expiry.
_INJECTION_TTL_SECONDS = 10.0


class Route:
    """One connection's credential and the hosts it may be sent to."""

    def __init__(
        self,
        provider_name: str,
        connection: str,
        hosts: list[str],
        injection: Callable[[], Any],
        env_vars: list[str] | None = None,
    ) -> None:
        self.provider_name = provider_name
        self.connection = connection
        self.hosts = list(hosts)
        self.env_vars = list(env_vars or [])
        self._source = injection
        self._cached: Any = None
        self._cached_at = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Route({self.provider_name!r}, {self.connection!r}, hosts={self.hosts!r})"

    def matches(self, host: str) -> bool:
        """True when ``host`` is one of the provider's hosts (exact or whole-label wildcard)."""
        from authsome.providers.hosts import host_matches

        return any(host_matches(pattern, host) for pattern in self.hosts)

    def injection(self):
        """The ``Injection`` to apply now (may block: call off the event loop)."""
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached_at > _INJECTION_TTL_SECONDS:
                self._cached = self._source()
                self._cached_at = now
            return self._cached

    def wait_idle(self, timeout: float) -> None:
        """Return once no lookup is in progress (or after ``timeout``)."""
        if self._lock.acquire(timeout=timeout):
            self._lock.release()

    def cached_injection(self):
        """The injection if it is fresh in the cache, else None (never blocks for long)."""
        cached = self._cached
        if cached is not None and time.monotonic() - self._cached_at <= _INJECTION_TTL_SECONDS:
            return cached
        return None


def find_route(routes: list[Route], host: str) -> Route | None:
    """The first route whose provider serves ``host``."""
    for route in routes:
        if route.matches(host):
            return route
    return None


def all_host_patterns(routes: list[Route]) -> list[str]:
    return [pattern for route in routes for pattern in route.hosts]
