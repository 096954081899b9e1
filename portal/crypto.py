"""Encryption of secrets at rest (MultiFernet, so keys can rotate).

Keys come from CANOPY_SECRET_KEYS (comma-separated Fernet keys, newest first). Without it, one key
is derived from SECRET_KEY, which is fine for the embedded default but means rotating SECRET_KEY
makes stored secrets unreadable.

Keyed digests (HMAC-SHA256) of values that are looked up but never read back, such as API tokens,
use keys derived from the same keys, so rotating them works the same way.
"""

import base64
import hashlib
import hmac
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

__all__ = ["InvalidToken", "decrypt", "encrypt", "keyed_digests"]


def _keys() -> list[str]:
    """Fernet keys, newest first: CANOPY_SECRET_KEYS, or one derived from SECRET_KEY."""
    keys = list(settings.CANOPY_SECRET_KEYS)
    if not keys:
        digest = hashlib.sha256(("canopy-secrets:" + settings.SECRET_KEY).encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return keys


@cache
def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k) for k in _keys()])


@cache
def _hmac_keys(purpose: str) -> tuple[bytes, ...]:
    return tuple(hashlib.sha256(f"canopy-{purpose}:{key}".encode()).digest() for key in _keys())


def keyed_digests(value: str, *, purpose: str) -> list[str]:
    """HMAC-SHA256 hex digests of `value` under each key, newest first: store the first, look up by any.

    `purpose` separates the keys of different uses, so one digest can't stand in for another's.
    """
    return [hmac.new(key, value.encode(), hashlib.sha256).hexdigest() for key in _hmac_keys(purpose)]


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()
