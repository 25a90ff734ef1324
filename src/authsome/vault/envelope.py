"""The versioned AES-256-GCM envelope that seals every secret field.

Format (docs/vault-format.md)::

    {"enc": 1, "alg": "AES-256-GCM", "kid": "<8 hex>", "nonce": "<b64 12 bytes>", "ct": "<b64 ciphertext+tag>"}

The associated data binds a ciphertext to its record identity
(kind, owner, name, field), so it cannot be moved to another record.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os

from authsome.errors import StoreCorruptError

ENVELOPE_VERSION = 1
ALG = "AES-256-GCM"
KEY_BYTES = 32
NONCE_BYTES = 12


def key_id(key: bytes) -> str:
    """A short public identifier of a data key (not usable to recover it)."""
    return hashlib.sha256(b"authsome-kid\x00" + key).hexdigest()[:16]


def associated_data(kind: str, owner: str, name: str, field: str) -> bytes:
    return json.dumps(["authsome/v1", kind, owner, name, field], separators=(",", ":")).encode()


def seal(key: bytes, plaintext: bytes, aad: bytes) -> dict:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(NONCE_BYTES)
    ct = AESGCM(key).encrypt(nonce, plaintext, aad)
    return {
        "enc": ENVELOPE_VERSION,
        "alg": ALG,
        "kid": key_id(key),
        "nonce": base64.b64encode(nonce).decode(),
        "ct": base64.b64encode(ct).decode(),
    }


def unseal(key: bytes, envelope: object, aad: bytes, where: str) -> bytes:
    """Open an envelope; ``where`` names the record for error messages."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce, ct, kid = _parse(envelope, where)
    if kid != key_id(key):
        raise StoreCorruptError(
            f"The secret of {where} was sealed with another key (key id {kid}).",
            hint="This vault's key source does not match its data; restore the matching key or config.",
        )
    try:
        return AESGCM(key).decrypt(nonce, ct, aad)
    except InvalidTag:
        raise StoreCorruptError(
            f"The stored secret of {where} failed authentication: it was tampered with or damaged.",
            hint="Log in again to replace it (authsome login ... --force), or restore the vault from a backup.",
        ) from None


def _parse(envelope: object, where: str) -> tuple[bytes, bytes, str]:
    bad = StoreCorruptError(
        f"The stored secret of {where} is not a valid envelope.",
        hint="Log in again to replace it (authsome login ... --force), or restore the vault from a backup.",
    )
    if not isinstance(envelope, dict):
        raise bad
    if envelope.get("enc") != ENVELOPE_VERSION or envelope.get("alg") != ALG:
        raise bad
    kid, nonce_b64, ct_b64 = envelope.get("kid"), envelope.get("nonce"), envelope.get("ct")
    if not all(isinstance(v, str) for v in (kid, nonce_b64, ct_b64)):
        raise bad
    try:
        nonce = base64.b64decode(nonce_b64, validate=True)
        ct = base64.b64decode(ct_b64, validate=True)
    except ValueError:
        raise bad from None
    if len(nonce) != NONCE_BYTES or len(ct) < 16:
        raise bad
    return nonce, ct, kid
