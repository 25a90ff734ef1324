"""OAuth refresh through the real CLI on two machines sharing a team vault: single flight via the engine lease."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import AUTHSOME

FAKE_BROWSER = Path(__file__).parents[1] / "oauth" / "fake_browser.py"
READ_TOKEN = ("get", "localauth", "--field", "access_token", "--show-secret")


def test_eight_cli_processes_on_two_machines_refresh_once(team_cli_factory, oauth_server, tmp_path):
    machines = [team_cli_factory("a"), team_cli_factory("b")]
    provider_file = oauth_server.write_provider(tmp_path, "localauth")
    browser = {"BROWSER": f"{sys.executable} {FAKE_BROWSER} %s", "FAKE_BROWSER_ISSUER": oauth_server.issuer}
    for machine in machines:
        assert machine("register", str(provider_file)).returncode == 0
    oauth_server.configure(access_token_ttl=120)  # inside the 5-minute refresh window
    login = machines[0]("login", "localauth", "--client-id", "authsome-public", env=browser)
    assert login.returncode == 0, login.stderr
    oauth_server.configure(access_token_ttl=3600)
    processes = [
        subprocess.Popen(
            [AUTHSOME, *READ_TOKEN],
            env=machines[i % 2].env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(8)
    ]
    results = [(p.communicate(timeout=120), p.returncode) for p in processes]
    assert [code for _, code in results] == [0] * 8, [err for (_, err), _ in results]
    assert len({out.strip() for (out, _), _ in results}) == 1
    assert oauth_server.refresh_grants == 1
    assert not [key for key in oauth_server.grant_errors() if key.startswith("refresh_token:")]
