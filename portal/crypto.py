"""Encryption of secrets at rest (MultiFernet, so keys can rotate).

Keys come from CANOPY_SECRET_KEYS (comma-separated Fernet keys, newest first). Without it, one key
is derived from SECRET_KEY, which is fine for the embedded default but means rotating SECRET_KEY
makes stored secrets unreadable.
"""

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

__all__ = ["InvalidToken", "decrypt", "encrypt"]


@cache
def _fernet() -> MultiFernet:
    keys = list(settings.CANOPY_SECRET_KEYS)
    if not keys:
        digest = hashlib.sha256(("canopy-secrets:" + settings.SECRET_KEY).encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return MultiFernet([Fernet(k) for k in keys])


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()
