"""Start and drive the real authorization server (server.js, oidc-provider 9) from tests.

Importable from tests/oauth and tests/e2e/oauth (their conftest puts this directory
on sys.path). The server listens on 127.0.0.1 on an ephemeral port; one per pytest
worker process (session scope). Tests change its behaviour through its test-only
endpoints (``configure``), and ``reset`` restores the defaults between tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from tests.processes import stop_process

HERE = Path(__file__).resolve().parent
SERVER_JS = HERE / "server.js"

PUBLIC_CLIENT = "authsome-public"
FIXED_PORT_CLIENT = "authsome-fixed-port"
CONFIDENTIAL_CLIENT = "authsome-confidential"
CONFIDENTIAL_SECRET = "confidential-test-secret-0123456789"
RESOURCE_SERVER = ("test-resource-server", "resource-server-test-secret-0123456789")
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

_XSRF = re.compile(r'name="xsrf" value="([^"]+)"')


class ServerNotAvailable(RuntimeError):
    pass


def node_available() -> str | None:
    """Why the server cannot run here (None when it can)."""
    if shutil.which("node") is None:
        return "node is not installed (see .ci/setup.d/40-oauth-server.sh)"
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        return "oidc-provider is not installed: run `npm ci` in tests/oauth_server"
    return None


class OAuthTestServer:
    """A running server.js process and helpers that play the user's browser."""

    def __init__(self, process: subprocess.Popen | None, issuer: str) -> None:
        self.process = process
        self.issuer = issuer
        self._http = httpx.Client(base_url=issuer, timeout=15, trust_env=False)

    # -- lifecycle ---------------------------------------------------------
    @classmethod
    def start(cls, *, timeout: float = 30.0) -> OAuthTestServer:
        reason = node_available()
        if reason:
            raise ServerNotAvailable(reason)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NODE_ENV": "test"}
        errors = tempfile.TemporaryFile(mode="w+")  # the server's warnings and crashes, for diagnosis
        process = subprocess.Popen(
            ["node", str(SERVER_JS), "0"],
            cwd=HERE,
            stdin=subprocess.PIPE,  # closing it (or our death) stops the server
            stdout=subprocess.PIPE,
            stderr=errors,
            env=env,
            text=True,
        )
        line_holder: list[str] = []

        def read_ready() -> None:
            assert process.stdout is not None
            line_holder.append(process.stdout.readline())

        reader = threading.Thread(target=read_ready, daemon=True)
        reader.start()
        reader.join(timeout)
        line = line_holder[0] if line_holder else ""
        if not line.startswith("READY "):
            process.kill()
            process.wait(timeout=10)
            errors.seek(0)
            raise ServerNotAvailable(f"server.js did not start (got {line!r}): {errors.read()[-2000:]}")
        errors.close()  # the file stays open in the child
        return cls(process, line.split()[1])

    @classmethod
    def attach(cls, issuer: str) -> OAuthTestServer:
        """A handle on a server another process started (e.g. from a fake browser script)."""
        return cls(None, issuer)

    def stop(self) -> None:
        self._http.close()
        if self.process is not None:
            stop_process(self.process)

    # -- test-only control ---------------------------------------------------
    def state(self) -> dict:
        return self._http.get("/__test/state").raise_for_status().json()

    def configure(self, **settings: object) -> dict:
        return self._http.post("/__test/config", json=settings).raise_for_status().json()

    def reset(self) -> None:
        self._http.post("/__test/reset").raise_for_status()

    @property
    def refresh_grants(self) -> int:
        return self.state()["counts"]["refresh_token_grants"]

    def grant_errors(self) -> dict:
        return self.state()["counts"]["grant_errors"]

    def discovery(self) -> dict:
        return self._http.get("/.well-known/openid-configuration").raise_for_status().json()

    # -- what a resource server would ask -------------------------------------
    def introspect(self, token: str) -> dict:
        response = self._http.post("/token/introspection", data={"token": token}, auth=RESOURCE_SERVER)
        return response.raise_for_status().json()

    def token_request(self, data: dict, auth: tuple[str, str] | None = None) -> httpx.Response:
        return self._http.post("/token", data=data, auth=auth)

    # -- playing the user's browser --------------------------------------------
    def browser(self) -> httpx.Client:
        """A fresh cookie jar: a new user agent with no session at the server."""
        return httpx.Client(timeout=15, trust_env=False, follow_redirects=False)

    def authorize_until_callback(self, url: str, browser: httpx.Client | None = None) -> str:
        """Follow the authorization redirects (login and consent answered by the server's
        interaction mode) and return the redirect to the client, without requesting it."""
        own = browser is None
        browser = browser or self.browser()
        try:
            for _ in range(20):
                response = browser.get(url)
                if response.status_code not in (302, 303):
                    raise AssertionError(f"authorization stopped at HTTP {response.status_code}: {url}")
                url = urljoin(url, response.headers["location"])
                if not url.startswith(self.issuer + "/"):
                    return url
            raise AssertionError("too many redirects during authorization")
        finally:
            if own:
                browser.close()

    def deliver(self, callback_url: str) -> httpx.Response:
        """Request the client's redirect URI, as the browser would."""
        with httpx.Client(timeout=15, trust_env=False) as client:
            return client.get(callback_url)

    def approve(self, url: str) -> httpx.Response:
        return self.deliver(self.authorize_until_callback(url))

    def approve_device(self, user_code: str, *, abort: bool = False) -> str:
        """Enter ``user_code`` on the verification page and confirm (or abort) as a second client.

        Returns the final page's text.
        """
        with self.browser() as browser:
            page = browser.get(f"{self.issuer}/device").raise_for_status()
            xsrf = _XSRF.search(page.text).group(1)
            page = browser.post(f"{self.issuer}/device", data={"xsrf": xsrf, "user_code": user_code})
            page.raise_for_status()
            xsrf = _XSRF.search(page.text).group(1)
            form = {"xsrf": xsrf, "user_code": user_code}
            form.update({"abort": "yes"} if abort else {"confirm": "yes"})
            response = browser.post(f"{self.issuer}/device", data=form)
            for _ in range(20):
                if response.status_code not in (302, 303):
                    break
                location = urljoin(str(response.url), response.headers["location"])
                response = browser.get(location)
            return response.raise_for_status().text

    # -- provider definitions pointing here -------------------------------------
    def provider_definition(
        self, name: str = "localauth", *, flow: str = "pkce", flows: list[str] | None = None, **oauth_overrides
    ) -> dict:
        host = urlsplit(self.issuer).netloc
        oauth = {
            "authorization_url": f"{self.issuer}/auth",
            "token_url": f"{self.issuer}/token",
            "device_authorization_url": f"{self.issuer}/device/auth",
            "registration_url": f"{self.issuer}/reg",
            "revocation_url": f"{self.issuer}/token/revocation",
            "scopes": ["openid", "read"],
            "pkce": True,
            "client_id_env": "LOCALAUTH_CLIENT_ID",
            "client_secret_env": "LOCALAUTH_CLIENT_SECRET",
            "env_var": "LOCALAUTH_TOKEN",
            "loopback_any_port": True,
        }
        oauth.update(oauth_overrides)
        return {
            "schema_version": 2,
            "name": name,
            "display_name": "Local Auth",
            "auth_type": "oauth2",
            "flow": flow,
            "flows": flows if flows is not None else [f for f in ("pkce", "device_code", "dcr_pkce") if f != flow],
            "docs_url": f"{self.issuer}/",
            "hosts": [host.split(":")[0]],
            "oauth": oauth,
        }

    def write_provider(self, directory: Path, name: str = "localauth", **kwargs) -> Path:
        path = Path(directory) / f"{name}.json"
        path.write_text(json.dumps(self.provider_definition(name, **kwargs), indent=2))
        return path


class BrowserInThread:
    """Plays the user's browser on a thread: approves each URL it is given."""

    def __init__(self, server: OAuthTestServer, *, tamper=None) -> None:
        self.server = server
        self.tamper = tamper
        self.urls: list[str] = []
        self.responses: list = []
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []

    def __call__(self, url: str) -> None:
        self.urls.append(url)
        thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self._threads.append(thread)
        thread.start()

    def _run(self, url: str) -> None:
        try:
            callback = self.server.authorize_until_callback(url)
            if self.tamper:
                callback = self.tamper(callback)
            self.responses.append(self.server.deliver(callback))
        except BaseException as exc:  # noqa: BLE001 - reported by join()
            self.errors.append(exc)

    def join(self, timeout: float = 30) -> None:
        for thread in self._threads:
            thread.join(timeout)
        if self.errors:
            raise self.errors[0]


def endpoints_for(server, **overrides):
    from authsome.flows.endpoints import OAuthEndpoints

    values = {
        "provider": "localauth",
        "authorization_url": f"{server.issuer}/auth",
        "token_url": f"{server.issuer}/token",
        "revocation_url": f"{server.issuer}/token/revocation",
        "device_authorization_url": f"{server.issuer}/device/auth",
        "registration_url": f"{server.issuer}/reg",
        "issuer": server.issuer,
    }
    values.update(overrides)
    return OAuthEndpoints(**values)


def pkce_tokens(server, client_id="authsome-public", secret=None, scopes=("openid", "read")):
    """Log in with PKCE (the server approves) and return the TokenSet."""
    from authsome.flows.pkce import login_pkce
    from authsome.flows.tokens import ClientConfig

    browser = BrowserInThread(server)
    tokens = login_pkce(
        endpoints_for(server),
        ClientConfig(client_id, secret),
        list(scopes),
        label="localauth (default)",
        timeout=30,
        announce=lambda message: None,
        any_loopback_port=True,
        opener=browser,
    )
    browser.join()
    return tokens


def wait_until(predicate, *, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)
