"""The browser form: serve it, open the browser, wait for a valid value.

``capture_in_browser`` binds the form server (form_server.py) on 127.0.0.1:7998
or, if that is taken, another free loopback port, prints the one-time URL,
opens the browser with the standard library's ``webbrowser`` (honouring
$BROWSER), shows a countdown on a terminal, and returns the accepted values.
"""

from __future__ import annotations

import errno
import sys
import threading
import time
from collections.abc import Callable

from authsome.errors import AuthsomeError, CancelledError, InputTimeoutError
from authsome.secret_input import form_server
from authsome.secret_input.countdown import Countdown, format_duration
from authsome.secret_input.form_server import FormServer, Session
from authsome.secret_input.request import SecretRequest

DEFAULT_PORT = 7998
_WAIT_SLICE = 0.25

# Variables that unlock authsome or a team vault never reach the browser process.


def _announce_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def capture_in_browser(
    request: SecretRequest,
    *,
    timeout: float = 300,
    port: int = DEFAULT_PORT,
    open_browser: bool = True,
    announce: Callable[[str], None] = _announce_to_stderr,
) -> dict[str, str]:
    """Serve the form on loopback, wait for a valid submission, and return the values.

    Raises InputTimeoutError after ``timeout`` seconds and CancelledError on Ctrl-C.
    """
    session = Session(request)
    server = _bind(session, port, announce)
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    started = False
    try:
        serving.start()
        started = True
        url = f"http://127.0.0.1:{session.port}{session.path}"
        live_countdown = _is_tty(sys.stderr)
        if open_browser:
            announce(f"Opening a browser to enter the {request.describe()}.")
            announce("If it does not open, visit this link:")
        else:
            announce(f"Open this link in a browser to enter the {request.describe()}:")
        announce(f"  {url}")
        if not live_countdown:
            announce(f"Waiting up to {format_duration(timeout)} (Ctrl-C to cancel).")
        if open_browser:
            _open_browser(url)
        _wait(session, server, request, timeout, live_countdown)
    finally:
        if started:
            server.shutdown()
        server.server_close()
        server.close_all()
    if session.failed or session.result is None:
        raise AuthsomeError(
            f"authsome hit an internal error while checking the {request.describe()}.",
            "This is a bug; please report it.",
        )
    return dict(session.result)


def _bind(session: Session, port: int, announce: Callable[[str], None]) -> FormServer:
    try:
        return FormServer(port, session)
    except OSError as err:
        if port == 0 or err.errno not in (errno.EADDRINUSE, errno.EACCES):
            raise _cannot_listen(session.request, err) from None
    try:
        server = FormServer(0, session)
    except OSError as err:
        raise _cannot_listen(session.request, err) from None
    announce(f"Port {port} is busy; using port {session.port} instead.")
    return server


def _cannot_listen(request: SecretRequest, err: OSError) -> AuthsomeError:
    return AuthsomeError(
        f"Cannot open the local form for {request.provider} ({request.connection}) on 127.0.0.1: "
        f"{err.strerror or err}.",
        "Use --no-browser to type the value in the terminal, or --stdin / --from-env.",
    )


def _wait(session: Session, server: FormServer, request: SecretRequest, timeout: float, live_countdown: bool) -> None:
    deadline = time.monotonic() + timeout
    countdown = Countdown(f"Waiting for the {request.describe()}", timeout) if live_countdown else None
    try:
        if countdown is not None:
            countdown.start()
        while not session.done.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                raise InputTimeoutError(
                    f"Timed out after {format_duration(timeout)} waiting for the {request.describe()}.",
                    "Run the command again; use --timeout SECONDS to wait longer.",
                )
            session.done.wait(min(_WAIT_SLICE, left))
            server.reap(form_server.CONNECTION_DEADLINE)
    except KeyboardInterrupt:
        raise CancelledError(f"Cancelled while waiting for the {request.describe()}; nothing was stored.") from None
    finally:
        if countdown is not None:
            countdown.stop()


def _open_browser(url: str) -> None:
    from authsome.browser_open import open_in_browser

    open_in_browser(url)


def _is_tty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return False
