"""Signing helpers for test payloads: the two encodings platforms use for an HMAC-SHA256 of the raw body."""

from __future__ import annotations

import base64
import hashlib
import hmac


def _digest(secret: str | bytes, body: bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, body, hashlib.sha256).digest()


def hmac_sha256_hex(secret: str | bytes, body: bytes) -> str:
    """Lower-case hex HMAC-SHA256 of `body` (GitHub-, Meta- and Kanal-style signature headers)."""
    return _digest(secret, body).hex()


def hmac_sha256_base64(secret: str | bytes, body: bytes) -> str:
    """Standard base64 HMAC-SHA256 of `body` (LINE-, Shopify-style signature headers)."""
    return base64.b64encode(_digest(secret, body)).decode("ascii")
