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

The HTTP client is the standard library's (``openbao_http``), imported only
when a team engine is used, so the local backend never pays for it.
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
        self._nodes: dict[str, object] = {}  # url -> openbao_http.Node (its kept-alive connection)
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

    def token(self) -> str:
        if self._token is None:
            self._token = self._token_provider()
        return self._token

    def set_token(self, token: str) -> None:
        self._token = token

    def close(self) -> None:
        for node in self._nodes.values():
            node.close()
        self._nodes.clear()

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
        from authsome.vault.openbao_http import Dropped, Unreachable

        headers = {"X-Vault-Token": token if token is not None else self.token(), "X-Vault-Request": "true"}
        body = None
        if json is not None:
            import json as json_module

            body = json_module.dumps(json).encode()
            headers["Content-Type"] = "application/json"
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
                if self._index:
                    headers[INDEX_HEADER] = self._index[1]
                try:
                    answer = self._node(url).exchange(
                        method, path, body, headers, min(self.connect_timeout, remaining), remaining
                    )
                except Unreachable as exc:
                    failures.append(f"{url} (unreachable: {exc})")  # e.g. "connection refused"
                    continue
                except Dropped as exc:  # e.g. the connection dropped mid-answer
                    failures.append(f"{url} ({exc})")
                    leaderless = True
                    continue
                status = answer.status
                if 300 <= status < 400:
                    # A standby that redirects instead of forwarding: redirects are never followed
                    # (the token header would go along); the active node is among the other URLs.
                    failures.append(f"{url} (HTTP {status}, a standby node)")
                    leaderless = True
                    continue
                if status in _RETRIED:
                    failures.append(f"{url} ({_RETRIED[status]}{_detail(answer)})")
                    leaderless = True
                    continue
                if status == 404:
                    self._preferred = self.urls.index(url)
                    return None
                if status >= 400:
                    self._refuse(status, answer, url, method, path, what)
                self._preferred = self.urls.index(url)
                self._note_index(answer.headers.get(INDEX_HEADER))
                if status == 204 or not answer.body:
                    return None
                try:
                    decoded = _json_loads(answer.body)
                except ValueError:
                    decoded = None
                if not isinstance(decoded, dict):
                    raise StoreError(f"The team vault at {url} answered with something that is not a JSON object.")
                return decoded
            if not leaderless or time.monotonic() + RETRY_PAUSE >= deadline:
                break
            time.sleep(RETRY_PAUSE)
        raise StoreError(
            f"The team vault is unreachable, could not {what}: {'; '.join(failures)}.",
            hint="Check that the engine is running and reachable, and the URL(s) in config.json; "
            "'authsome whoami' shows them.",
        )

    def _node(self, url: str):
        node = self._nodes.get(url)
        if node is None:
            from authsome.vault.openbao_http import Node

            node = self._nodes[url] = Node(url)
        return node

    @staticmethod
    def _refuse(status: int, answer, url: str, method: str, path: str, what: str) -> None:
        """Raise the error for a 4xx/5xx answer that no other node would answer differently."""
        if status == 403:
            raise ForbiddenError(
                f"The team vault at {url} refused to {what}: its policy does not allow this token "
                f"to {_verb(method)} {path} (or the token has expired).",
                hint="Run 'authsome whoami' to see the token's policies; ask the vault's administrator "
                "for access, or use a home whose token is allowed.",
            )
        if status == 401:
            raise ForbiddenError(
                f"The team vault at {url} did not accept the token while trying to {what}.",
                hint="Set VAULT_TOKEN, or run 'authsome init --backend openbao' again to store a new token.",
            )
        errors = _errors(answer)
        if status == 400:
            if any("check-and-set" in error for error in errors):
                raise CasMismatch()
            raise StoreError(f"The team vault at {url} rejected the request to {what}: {_joined(errors, status)}.")
        raise StoreError(f"The team vault at {url} failed to {what}: HTTP {status}{_detail(answer)}.")


# Answers after which another node, or the same one a moment later, may do better.
_RETRIED = {
    429: "HTTP 429, catching up",  # a standby that has not applied our index yet
    500: "HTTP 500",
    501: "HTTP 501, not initialised",
    502: "HTTP 502",
    503: "HTTP 503, sealed or no leader",
}


def _json_loads(data: bytes):
    import json

    return json.loads(data)


def _errors(answer) -> list[str]:
    """The ``errors`` list of an engine's error answer (texts about paths and policies, never secrets)."""
    try:
        errors = _json_loads(answer.body).get("errors") or []
    except (ValueError, AttributeError):
        return []
    return [str(error) for error in errors] if isinstance(errors, list) else []


def _joined(errors: list[str], status: int) -> str:
    return "; ".join(errors)[:300] or f"HTTP {status}"


def _detail(answer) -> str:
    errors = _errors(answer)
    return f": {'; '.join(errors)[:300]}" if errors else ""


def _verb(method: str) -> str:
    return {"GET": "read", "LIST": "list", "POST": "write", "PUT": "write", "DELETE": "delete"}.get(method, method)
