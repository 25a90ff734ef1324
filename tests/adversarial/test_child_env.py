"""Regression: nothing authsome spawns while it holds a secret in its environment inherits it.

Found by the leak scanner: loading keyring's backends imported its macOS backend, whose ctypes
API runs ``find_library`` and so spawned ldconfig, gcc and ld with authsome's whole environment,
a ``--from-env`` key or ``AUTHSOME_PASSPHRASE`` included (fixed in vault/keysource.py).
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import canary_key

PROBE = r"""
import json, os, subprocess, sys
spawned = []
original = subprocess.Popen.__init__
def recording(self, *args, **kwargs):
    env = kwargs.get("env")
    inherited = env is None or any(v == os.environ["OPENAI_API_KEY"] for v in env.values())
    spawned.append({"argv": str(args[0] if args else kwargs.get("args"))[:80], "inherits": inherited})
    return original(self, *args, **kwargs)
subprocess.Popen.__init__ = recording
from authsome.vault import keysource
keysource.usable_keyring_backend()
try:
    keysource._read_keyring({"backend": "keyring.backends.SecretService.Keyring"})
except Exception:
    pass
print(json.dumps(spawned))
"""


def test_keyring_probe_spawns_nothing_that_inherits_the_environment(tmp_path):
    key = canary_key()
    env = {"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": key, "AUTHSOME_PASSPHRASE": key, "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    spawned = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [s for s in spawned if s["inherits"]] == [], spawned
