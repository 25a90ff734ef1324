"""The OS-keyring key source against a real Secret Service (gnome-keyring under dbus-run-session)."""

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import AUTHSOME, canary_key

pytestmark = pytest.mark.skipif(
    shutil.which("dbus-run-session") is None or shutil.which("gnome-keyring-daemon") is None,
    reason="needs dbus and gnome-keyring (installed by scripts/setup)",
)

SESSION = """
set -e
printf 'unlock-pw' | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1
# The daemon answers on the bus a moment after it forks: wait (bounded) until a real backend works.
for i in $(seq 100); do
  {python} -c 'from authsome.vault.keysource import usable_keyring_backend as u; raise SystemExit(u() is None)' && break
  sleep 0.1
done
A={authsome}
$A init --json
printf '%s\\n' "$KEY" | $A login openai --stdin
$A get openai --field api_key --show-secret
$A whoami --json
"""


def test_keyring_key_source_round_trip(cli, tmp_path):
    key = canary_key()
    # A fresh user home: gnome-keyring creates a new login keyring there with the password we pipe in
    # (an existing one with another password would make it prompt for it on a display we do not have).
    user_home = tmp_path / "user"
    user_home.mkdir()
    proc = subprocess.run(
        ["dbus-run-session", "--", "bash", "-c", SESSION.format(authsome=AUTHSOME, python=sys.executable)],
        env=dict(cli.env, KEY=key, HOME=str(user_home), XDG_DATA_HOME=str(user_home / ".local/share")), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert key in proc.stdout  # --show-secret read it back through the keyring-held key
    config = json.loads((cli.home / "config.json").read_text())
    assert config["key_source"] == "keyring"
    assert "SecretService" in config["keyring"]["backend"]
    assert not (cli.home / "vault.key").exists()  # no key on disk
    assert key not in (cli.home / "config.json").read_text()
    # Outside that session the keyring is gone: a clear exit 7, never a silent switch to another source.
    proc = cli("get", "openai", "--field", "api_key", "--show-secret")
    assert proc.returncode == 7, proc.stderr
    assert "keyring" in proc.stderr.lower() and "Traceback" not in proc.stderr
    assert cli("get", "openai", "--field", "status").stdout == "connected\n"  # metadata needs no key
    assert not (cli.home / "vault.key").exists()
