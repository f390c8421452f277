"""Capability tokens: long random strings of which only a hash is stored."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

TOKEN_BYTES = 32  # 256 bits; the product rule is at least 128


def new_token() -> str:
    """Return a fresh URL-safe token with 256 bits from the system's CSPRNG."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest under which a token is stored and looked up."""
    return hashlib.sha256(token.encode()).hexdigest()


def derive_token(secret: str, purpose: str) -> str:
    """Return the token a device secret yields for one purpose.

    The same device asking twice (a double tap, a retried request) derives the same
    token, so both answers carry a working badge link while the database holds only
    its hash.
    """
    digest = hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def same_token(token: str, token_hash: str) -> bool:
    """Tell in constant time whether a token matches a stored hash."""
    return hmac.compare_digest(hash_token(token), token_hash)


def signature(secret: str, *parts: object) -> str:
    """Return a signature (256 bits) over some values, that only the holder of `secret` makes.

    A link carrying it names those values and cannot be changed to name others.
    """
    return derive_token(secret, "\x1f".join(str(part) for part in parts))


def signed(secret: str, given: str, *parts: object) -> bool:
    """Tell in constant time whether `given` is the signature of these values."""
    return hmac.compare_digest(signature(secret, *parts), given)
