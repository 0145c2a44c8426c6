"""Keyed HMAC pseudonyms for customer ids in alerts and metrics: stable for one key, so SOC can
correlate alerts, and useless without the key, which lives only in the environment."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sys
from collections.abc import Callable

ENV_KEY = "LIFEMON_PSEUDONYM_KEY"


class Pseudonymizer:
    def __init__(self, key: bytes):
        if len(key) < 16:
            raise ValueError(f"{ENV_KEY} must be at least 16 bytes; generate one with `openssl rand -hex 32`")
        self._key = key
        self._cache: dict[str, str] = {}

    def __call__(self, subject_id: str) -> str:
        p = self._cache.get(subject_id)
        if p is None:
            p = "p_" + hmac.new(self._key, subject_id.encode(), hashlib.sha256).hexdigest()[:24]
            if len(self._cache) < 1_000_000:
                self._cache[subject_id] = p
        return p

    @classmethod
    def from_env(cls, allow_ephemeral: bool = True) -> Pseudonymizer:
        raw = os.environ.get(ENV_KEY)
        if raw:
            return cls(raw.encode())
        if not allow_ephemeral:
            raise SystemExit(f"{ENV_KEY} is not set: set it to a secret of 32+ random characters")
        print(
            f"lifemon: {ENV_KEY} is not set; using a one-off key, so pseudonyms will differ after a restart",
            file=sys.stderr,
        )
        return cls(secrets.token_bytes(32))


def fingerprint(pseudonymize: Callable[[str], str], field_id: str) -> str:
    """`gap_` + 12 hex of the keyed HMAC of an unknown field id: countable, not readable. The
    coverage-gap rollups hold it instead of the id, which may be a value typed into the wrong place."""
    return "gap_" + pseudonymize("field:" + field_id)[2:14]
