"""Device authorization grant (RFC 8628) against the real server, approved by a second client."""

from __future__ import annotations

import re
import threading
import time

import pytest

from authsome.errors import CancelledError, InputTimeoutError
from authsome.flows.device_code import login_device_code
from authsome.flows.tokens import ClientConfig
from tests.oauth_server.oauth_test_server import DEVICE_GRANT, endpoints_for, wait_until

PENDING = f"{DEVICE_GRANT}:authorization_pending"
USER_CODE = re.compile(r"enter the code: (\S+)")


class SecondDevice:
    """Reads the user code from what authsome announces and approves it from another client."""

    def __init__(self, server, *, abort=False, approve=True) -> None:
        self.server = server
        self.abort = abort
        self.approve = approve
        self.messages: list[str] = []
        self.pages: list[str] = []
        self.errors: list[BaseException] = []
        self.thread: threading.Thread | None = None

    def __call__(self, message: str) -> None:
        self.messages.append(message)
        match = USER_CODE.search(message)
        if match and self.approve:
            self.thread = threading.Thread(target=self._approve, args=(match.group(1),), daemon=True)
            self.thread.start()

    def _approve(self, user_code: str) -> None:
        try:
            # approve only once authsome has polled and been told to wait
            wait_until(lambda: self.server.grant_errors().get(PENDING), what="a first authorization_pending poll")
            self.pages.append(self.server.approve_device(user_code, abort=self.abort))
        except BaseException as exc:  # noqa: BLE001
            self.errors.append(exc)

    def join(self) -> None:
        if self.thread:
            self.thread.join(30)
        if self.errors:
            raise self.errors[0]


def login(server, device, **kwargs):
    return login_device_code(
        endpoints_for(server),
        ClientConfig("authsome-public"),
        ["openid", "read"],
        label="localauth (default)",
        timeout=kwargs.pop("timeout", 60),
        announce=device,
        **kwargs,
    )


def test_device_code_login_approved_by_a_second_client(oauth_server):
    device = SecondDevice(oauth_server)
    tokens = login(oauth_server, device)
    device.join()
    assert "Sign-in Success" in device.pages[0]
    assert f"{oauth_server.issuer}/device" in device.messages[0]
    info = oauth_server.introspect(tokens.access_token)
    assert info["active"] is True and info["sub"] == "alice"
    assert tokens.refresh_token
    counts = oauth_server.state()["counts"]
    assert counts["grants"] == {"urn:ietf:params:oauth:grant-type:device_code": 1}
    # it polled while the user had not approved yet
    assert counts["grant_errors"].get(PENDING, 0) >= 1


def test_slow_down_adds_five_seconds_to_the_interval(oauth_server):
    oauth_server.configure(slow_down=2)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(0.2)  # the server does not enforce the interval; keep the test short

    device = SecondDevice(oauth_server)
    login(oauth_server, device, sleep=sleep)
    device.join()
    assert waits[:3] == [1, 6, 11]
    assert all(w == 11 for w in waits[3:])


def test_default_interval_is_five_seconds_when_the_server_gives_none(oauth_server):
    oauth_server.configure(device_interval=0)  # 0 -> our parser falls back to the default
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(0.2)

    device = SecondDevice(oauth_server)
    login(oauth_server, device, sleep=sleep)
    device.join()
    assert waits and set(waits) == {5}


def test_access_denied_is_cancelled(oauth_server):
    device = SecondDevice(oauth_server, abort=True)
    with pytest.raises(CancelledError) as caught:
        login(oauth_server, device)
    device.join()
    assert caught.value.exit_code == 8
    assert "denied" in caught.value.message
    assert oauth_server.state()["counts"]["grants"] == {}


def test_expired_device_code(oauth_server):
    oauth_server.configure(device_code_ttl=1)
    device = SecondDevice(oauth_server, approve=False)
    # a frozen clock: only the server's expired_token can end the wait
    with pytest.raises(InputTimeoutError) as caught:
        login(oauth_server, device, clock=lambda: 0.0, sleep=lambda s: time.sleep(1.5))
    assert "expired before it was approved" in caught.value.message


def test_gives_up_at_the_timeout(oauth_server):
    device = SecondDevice(oauth_server, approve=False)
    with pytest.raises(InputTimeoutError) as caught:
        login(oauth_server, device, timeout=2)
    assert "Timed out" in caught.value.message


def test_transient_errors_while_polling_back_off_and_continue(oauth_server):
    oauth_server.configure(fail_token=1)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(0.2)

    device = SecondDevice(oauth_server)
    tokens = login(oauth_server, device, sleep=sleep)
    device.join()
    assert waits[:2] == [1, 2]
    assert oauth_server.introspect(tokens.access_token)["active"] is True
