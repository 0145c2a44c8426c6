"""State values that must survive a restart but may not be kept readable: sealed with AES-GCM.

A raw log's parser holds a session's last statement until its next line comes (streams/sources,
`carry`), and that statement's text is the database's own: customer ids in its WHERE clause, a
card number typed into a literal. The carry is partition state, so it goes to the local RocksDB
and to the changelog topic at each checkpoint; both must hold it only sealed (docs/security.md).
The key is derived from the pseudonym key of the same version (HMAC with a label of its own), so
no second secret is needed, and a key ring that can still read a version's pseudonyms can open
that version's sealed values.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from streams.keyed_state import state_encode

SEALED = "sealed"  # the one key of a sealed value's JSON: {"sealed": "<version>:<base64>"}
_LABEL = b"lifemon sealed state v1"
_NONCE_BYTES = 12


class SealError(RuntimeError):
    """A sealed value that this key ring cannot open: a key missing, or the value altered."""


class Sealer:
    def __init__(self, ring: Mapping[int, bytes], version: int):
        """`ring`: the pseudonym keys by version (streams/pseudonym.py); new values use `version`."""
        self.version = version
        self._aead = {v: AESGCM(hmac.new(k, _LABEL, hashlib.sha256).digest()) for v, k in ring.items()}

    def seal(self, data: bytes) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead[self.version].encrypt(nonce, data, None)
        return f"{self.version}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, token: str) -> bytes:
        version, _, body = token.partition(":")
        aead = self._aead.get(int(version)) if version.isdigit() else None
        if aead is None:
            raise SealError(f"sealed state of key version {version!r}, and that pseudonym key is not set")
        raw = base64.b64decode(body)
        try:
            return aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], None)
        except InvalidTag as e:
            raise SealError(
                "sealed state does not open with its pseudonym key: altered, or another key"
            ) from e


class Sealed:
    """A live value kept in a store as it is, encoded only sealed (the store's encoder calls
    `to_json`, for the local disk and the changelog alike)."""

    __slots__ = ("value", "sealer")

    def __init__(self, value: Any, sealer: Sealer):
        self.value, self.sealer = value, sealer

    def to_json(self) -> dict[str, str]:
        return {SEALED: self.sealer.seal(state_encode(self.value))}
