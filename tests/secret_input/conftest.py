"""Shared helpers: run the real browser form in a thread and talk to it over real sockets."""

from __future__ import annotations

import http.client
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlencode, urlsplit

import pytest

from authsome.errors import InvalidCredentialError
from authsome.secret_input.browser_form import capture_in_browser
from authsome.secret_input.request import FieldSpec, SecretRequest

GOOD_KEY = "sk-goodKEY0123456789abcdefXYZ"
BAD_KEY = "not-a-key-<b>marker</b>-77781"
HINT = "OpenAI API keys start with 'sk-' followed by at least 20 letters, digits, '_' or '-'."
ERROR = "This does not look like a valid OpenAI API key."


def openai_validate(values: dict[str, str]) -> None:
    if not re.fullmatch(r"sk-[A-Za-z0-9_-]{20,}", values["api_key"]):
        raise InvalidCredentialError(ERROR, HINT)


def openai_request(validate=openai_validate) -> SecretRequest:
    return SecretRequest(
        provider="openai",
        display_name="OpenAI",
        connection="default",
        fields=[FieldSpec("api_key", "API key", True, HINT)],
        validate=validate,
    )


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.text = body.decode("utf-8", "replace")


def send(port: int, method: str, path: str, headers: list[tuple[str, str]], body: bytes | None = None) -> Response:
    """One request with exactly the headers given (no automatic Host)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


class FormRun:
    """capture_in_browser running in a background thread, with the URL it announced."""

    def __init__(self, request: SecretRequest, **kwargs) -> None:
        self.request = request
        self.kwargs = {"port": 0, "open_browser": False, "timeout": 20, **kwargs}
        self.messages: list[str] = []
        self.result: dict[str, str] | None = None
        self.error: BaseException | None = None
        self._announced = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _announce(self, message: str) -> None:
        self.messages.append(message)
        if "http://" in message:
            self._announced.set()

    def _run(self) -> None:
        try:
            self.result = capture_in_browser(self.request, announce=self._announce, **self.kwargs)
        except BaseException as err:  # recorded for the test to inspect
            self.error = err
        finally:
            self._announced.set()

    def start(self) -> FormRun:
        self.thread.start()
        assert self._announced.wait(10), "capture_in_browser never announced a URL"
        assert self.error is None, self.error
        match = re.search(r"http://\S+", "\n".join(self.messages))
        assert match, self.messages
        self.url = match.group(0)
        parts = urlsplit(self.url)
        self.port = parts.port
        self.path = parts.path
        self.host = f"127.0.0.1:{self.port}"
        self.origin = f"http://{self.host}"
        return self

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def wait(self, timeout: float = 10) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "capture_in_browser did not return"

    # Requests --------------------------------------------------------------
    def get(self, path: str | None = None, headers: list[tuple[str, str]] | None = None) -> Response:
        return send(self.port, "GET", path or self.path, headers if headers is not None else [("Host", self.host)])

    def csrf(self) -> str:
        page = self.get()
        assert page.status == 200, page.status
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert match
        return match.group(1)

    def post(
        self,
        fields: dict[str, str],
        *,
        path: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
    ) -> Response:
        data = body if body is not None else urlencode(fields).encode()
        if headers is None:
            headers = [
                ("Host", self.host),
                ("Origin", self.origin),
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Content-Length", str(len(data))),
            ]
        return send(self.port, "POST", path or self.path, headers, data)

    def submit(self, key: str) -> Response:
        return self.post({"csrf_token": self.csrf(), "api_key": key})


@contextmanager
def form_runs(teardown_key: str = GOOD_KEY) -> Iterator[Callable[..., FormRun]]:
    """Yields ``start(request=None, **kwargs)``, which starts a capture; on exit, every capture the
    test left running is finished with ``teardown_key`` (a valid key)."""
    runs: list[FormRun] = []

    def start(request: SecretRequest | None = None, **kwargs) -> FormRun:
        run = FormRun(request or openai_request(), **kwargs).start()
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.running:
            try:
                run.submit(teardown_key)
            except OSError:
                pass
            run.thread.join(10)


@pytest.fixture
def form_run():
    """Start a capture; at teardown, finish it with a valid key if the test left it running."""
    with form_runs() as start:
        yield start


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a child Python that imports this checkout's authsome."""
    import os

    import authsome

    src = os.path.dirname(os.path.dirname(os.path.abspath(authsome.__file__)))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHSOME_", "PYTEST_", "NO_COLOR"))}
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "") if env.get("PYTHONPATH") else src
    env.update(extra)
    return env
