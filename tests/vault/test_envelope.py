import base64
import json
import os
from pathlib import Path

import pytest

from authsome.errors import StoreCorruptError
from authsome.vault.envelope import associated_data, key_id, seal, unseal

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "envelope"


def test_round_trip_and_format():
    key = os.urandom(32)
    aad = associated_data("connection", "openai", "default", "api_key")
    env = seal(key, b"sk-secret", aad)
    assert set(env) == {"enc", "alg", "kid", "nonce", "ct"}
    assert env["enc"] == 1 and env["alg"] == "AES-256-GCM" and env["kid"] == key_id(key)
    assert b"sk-secret" not in json.dumps(env).encode()
    assert unseal(key, env, aad, "x") == b"sk-secret"


def test_nonces_differ():
    key = os.urandom(32)
    aad = associated_data("connection", "a", "b", "c")
    assert seal(key, b"v", aad)["nonce"] != seal(key, b"v", aad)["nonce"]


@pytest.mark.parametrize("other", [
    ("connection", "openai", "team", "api_key"),
    ("connection", "anthropic", "default", "api_key"),
    ("connection", "openai", "default", "refresh_token"),
    ("client", "openai", "default", "api_key"),
])
def test_ciphertext_bound_to_its_record(other):
    key = os.urandom(32)
    env = seal(key, b"sk-secret", associated_data("connection", "openai", "default", "api_key"))
    with pytest.raises(StoreCorruptError) as info:
        unseal(key, env, associated_data(*other), "openai (x)")
    assert "failed authentication" in info.value.message


def test_wrong_key_is_reported_by_key_id():
    env = seal(os.urandom(32), b"v", b"aad")
    with pytest.raises(StoreCorruptError, match="another key"):
        unseal(os.urandom(32), env, b"aad", "r")


def _vectors(prefix):
    return sorted(VECTORS.glob(f"{prefix}_*.json"))


@pytest.mark.parametrize("path", _vectors("good"), ids=lambda p: p.stem)
def test_good_vectors(path):
    v = json.loads(path.read_text())
    key = base64.b64decode(v["key"])
    aad = associated_data(*v["aad"])
    assert unseal(key, v["envelope"], aad, "vector") == v["plaintext"].encode()


@pytest.mark.parametrize("path", _vectors("fail"), ids=lambda p: p.stem)
def test_fail_vectors(path):
    v = json.loads(path.read_text())
    key = base64.b64decode(v["key"])
    with pytest.raises(StoreCorruptError):
        unseal(key, v["envelope"], associated_data(*v["aad"]), "vector")


def test_vectors_exist():
    assert len(_vectors("good")) >= 2 and len(_vectors("fail")) >= 6
