"""HTTP access to an OpenBao / HashiCorp Vault server (KV v2), with failover and error mapping.

Several URLs may be configured: each request goes to the last one that
answered, and moves on to the next on a connection error or a 5xx (standby
nodes forward writes to the leader). Every attempt has a 3 s connect timeout
and the whole request 10 s, so an unreachable engine is reported promptly as
a ``StoreError`` naming the URLs, never as a traceback.

OpenBao standbys serve reads from their own replica, which may lag. The
engine replays the newest ``X-Vault-Index`` it has seen on every request, so
a node answers only once it has applied everything this process wrote or
read (it says 429 until then, and the request is retried): after claiming a
refresh lease, the connection read back is at least as new as the previous
holder's saved tokens. Engine refusals become
``ForbiddenError``; a check-and-set mismatch becomes ``CasMismatch`` for the
store to turn into a ``ConflictError`` that names the connection.

``hvac`` (and ``requests`` under it) is imported here only, so the local
backend never pays for it.
"""

from __future__ import annotations

import threading
import time

from authsome.errors import ForbiddenError, StoreError

CONNECT_TIMEOUT = 3.0
TOTAL_TIMEOUT = 10.0
RETRY_PAUSE = 0.25
INDEX_HEADER = "X-Vault-Index"


class CasMismatch(Exception):
    """The KV check-and-set version did not match; nothing was written."""


class Engine:
    """One team engine: its URLs and a token; ``token_provider()`` is asked lazily, once."""

    def __init__(
        self,
        urls: list[str],
        token_provider,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        total_timeout: float = TOTAL_TIMEOUT,
    ) -> None:
        if not urls:
            raise StoreError(
                "No team vault URL is configured.", hint="Run 'authsome init --backend openbao --url URL'."
            )
        self.urls = [u.rstrip("/") for u in urls]
        self._token_provider = token_provider
        self._token: str | None = None
        self._adapters: dict[str, object] = {}
        self._preferred = 0
        self._index: tuple[int, str] | None = None  # (raft index, header value): the newest state seen
        self.connect_timeout = connect_timeout
        self.total_timeout = total_timeout
        # `authsome run` reads credentials from the proxy's worker threads: one request at a time.
        self._lock = threading.RLock()

    @property
    def url(self) -> str:
        """The URL that answered last (the first configured one before any request)."""
        return self.urls[self._preferred]

    def _adapter(self, url: str):
        adapter = self._adapters.get(url)
        if adapter is None:
            adapter = _raw_adapter(url, self.token())
            self._adapters[url] = adapter
        return adapter

    def token(self) -> str:
        if self._token is None:
            self._token = self._token_provider()
        return self._token

    def set_token(self, token: str) -> None:
        self._token = token
        for adapter in self._adapters.values():
            adapter.token = token

    def close(self) -> None:
        for adapter in self._adapters.values():
            adapter.close()
        self._adapters.clear()

    def _note_index(self, value: str | None) -> None:
        """Keep the newest X-Vault-Index (base64 JSON {"cluster", "value"}; opaque if it is not)."""
        if not value:
            return
        import base64
        import json

        try:
            number = int(json.loads(base64.b64decode(value + "=" * (-len(value) % 4)))["value"])
        except (ValueError, KeyError, TypeError):
            return
        if self._index is None or number > self._index[0]:
            self._index = (number, value)

    # ---- one request, every URL tried ----------------------------------------------
    def request(self, method: str, path: str, *, what: str, json: dict | None = None, token: str | None = None):
        """``method`` on ``/v1/<path>``: the decoded JSON answer, or None for 204 / 404.

        ``what`` describes the operation for error messages ("read openai (default)").
        """
        with self._lock:
            return self._request(method, path, what=what, json=json, token=token)

    def _request(self, method: str, path: str, *, what: str, json: dict | None, token: str | None):
        import hvac.exceptions as hx
        import requests

        deadline = time.monotonic() + self.total_timeout
        while True:
            failures: list[str] = []
            leaderless = False  # a node answered 5xx: an election may be under way, so another round helps
            order = self.urls[self._preferred :] + self.urls[: self._preferred]
            for url in order:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    failures.append(f"{url} (not tried: {self.total_timeout:.0f} s spent)")
                    continue
                adapter = self._adapter(url) if token is None else _raw_adapter(url, token)
                adapter._kwargs["timeout"] = (min(self.connect_timeout, remaining), remaining)
                headers = {INDEX_HEADER: self._index[1]} if self._index else None
                try:
                    answer = adapter.request(method, f"/v1/{path}", json=json, headers=headers)
                except (requests.ConnectionError, requests.Timeout):
                    failures.append(f"{url} (unreachable)")
                    continue
                except requests.RequestException as exc:  # e.g. the connection dropped mid-answer
                    failures.append(f"{url} ({type(exc).__name__})")
                    leaderless = True
                    continue
                except (hx.InternalServerError, hx.BadGateway, hx.VaultDown, hx.VaultNotInitialized) as exc:
                    failures.append(f"{url} ({_status_text(exc)})")
                    leaderless = True
                    continue
                except hx.RateLimitExceeded:  # a standby that has not applied our index yet
                    failures.append(f"{url} (HTTP 429, catching up)")
                    leaderless = True
                    continue
                except hx.InvalidPath:
                    self._preferred = self.urls.index(url)
                    return None
                except hx.Forbidden:
                    raise ForbiddenError(
                        f"The team vault at {url} refused to {what}: its policy does not allow this token "
                        f"to {_verb(method)} {path} (or the token has expired).",
                        hint="Run 'authsome whoami' to see the token's policies; ask the vault's administrator "
                        "for access, or use a home whose token is allowed.",
                    ) from None
                except hx.InvalidRequest as exc:
                    if _is_cas_mismatch(exc):
                        raise CasMismatch() from None
                    raise StoreError(
                        f"The team vault at {url} rejected the request to {what}: {_errors(exc)}."
                    ) from None
                except hx.Unauthorized:
                    raise ForbiddenError(
                        f"The team vault at {url} did not accept the token while trying to {what}.",
                        hint="Set VAULT_TOKEN, or run 'authsome init --backend openbao' again to store a new token.",
                    ) from None
                except hx.VaultError as exc:
                    raise StoreError(f"The team vault at {url} failed to {what}: {_status_text(exc)}.") from None
                if 300 <= answer.status_code < 400:
                    # A standby that redirects instead of forwarding: redirects are never followed
                    # (the token header would go along); the active node is among the other URLs.
                    failures.append(f"{url} (HTTP {answer.status_code}, a standby node)")
                    leaderless = True
                    continue
                self._preferred = self.urls.index(url)
                self._note_index(answer.headers.get(INDEX_HEADER))
                if answer.status_code == 204 or not answer.content:
                    return None
                try:
                    return answer.json()
                except ValueError:
                    raise StoreError(f"The team vault at {url} answered with something that is not JSON.") from None
            if not leaderless or time.monotonic() + RETRY_PAUSE >= deadline:
                break
            time.sleep(RETRY_PAUSE)
        raise StoreError(
            f"The team vault is unreachable, could not {what}: {'; '.join(failures)}.",
            hint="Check that the engine is running and reachable, and the URL(s) in config.json; "
            "'authsome whoami' shows them.",
        )


def _raw_adapter(url: str, token: str):
    import os

    from hvac.adapters import RawAdapter

    # The engine's private CA, as the bao / vault CLIs read it; otherwise the usual trust store.
    verify = os.environ.get("VAULT_CACERT") or os.environ.get("BAO_CACERT") or True
    return RawAdapter(base_uri=url, token=token, allow_redirects=False, verify=verify)


def _errors(exc) -> str:
    errors = getattr(exc, "errors", None) or []
    # Engine error texts describe paths and policies, never the token or secret data.
    return "; ".join(str(e) for e in errors)[:300] or type(exc).__name__


def _status_text(exc) -> str:
    names = {
        "InternalServerError": "HTTP 500",
        "BadGateway": "HTTP 502",
        "VaultDown": "HTTP 503, sealed or no leader",
        "VaultNotInitialized": "HTTP 501, not initialised",
    }
    detail = _errors(exc)
    return names.get(type(exc).__name__, type(exc).__name__) + (f": {detail}" if detail != type(exc).__name__ else "")


def _is_cas_mismatch(exc) -> bool:
    return any("check-and-set" in str(e) for e in (getattr(exc, "errors", None) or []))


def _verb(method: str) -> str:
    return {"GET": "read", "LIST": "list", "POST": "write", "PUT": "write", "DELETE": "delete"}.get(method, method)
