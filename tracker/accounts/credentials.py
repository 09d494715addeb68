"""Passwords and random tokens: how they are made, stored and checked.

Passwords are chosen by people, so they are stored as scrypt hashes (a slow, memory-hard
KDF from OpenSSL, through ``hashlib``) with a random salt, in the form
``scrypt$N$r$p$salt$hash``: parameters can be raised later and old hashes still verify.

Tokens (API tokens, session ids, share links) are 32 random bytes made here, so a fast
SHA-256 is enough to store them: nobody can guess a preimage of 256 random bits, and a
hash that is the same every time lets a request's token be looked up directly.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCRYPT_N = 2 ** 14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
#: Generated passwords: 18 random bytes, 24 URL-safe characters.
PASSWORD_BYTES = 18
TOKEN_BYTES = 32


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            maxmem=64 * 1024 * 1024, dklen=HASH_BYTES)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``; False for a malformed stored hash."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                maxmem=64 * 1024 * 1024, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a shared secret; never equal when either is empty."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
