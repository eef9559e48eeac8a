"""Timestamped HMAC signatures (`t=<unix seconds>,v1=<hex>`), shared by the `api` adapter and the CRM push.

The signed string is `<t>.<raw body>`: binding the timestamp stops a captured request being replayed
later, and signing the raw bytes (not re-serialised JSON) means what is checked is what was sent.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime

from adapters.errors import SignatureInvalid

DEFAULT_TOLERANCE_SECONDS = 300


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The header value for `body` signed at `timestamp`."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(
    header: str | None,
    body: bytes,
    secrets: Iterable[bytes],
    *,
    now: datetime,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Raise `SignatureInvalid` unless one `v1` matches one of `secrets` within the time window."""
    if not header:
        raise SignatureInvalid("missing X-Kanal-Signature header; sign the raw body as t=<unix>,v1=<hex hmac>")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value.strip().lower())
    if timestamp is None or not candidates:
        raise SignatureInvalid("malformed X-Kanal-Signature header; expected t=<unix seconds>,v1=<hex hmac>")
    skew = abs(now.timestamp() - timestamp)
    if skew > tolerance_seconds:
        raise SignatureInvalid(
            f"signature timestamp is {int(skew)} s away from our clock (limit {tolerance_seconds} s); "
            "sign each request when sending it and check the sender's clock"
        )
    signed = str(timestamp).encode() + b"." + body
    matched = False
    for secret in secrets:
        expected = hmac.new(secret, signed, hashlib.sha256).hexdigest()
        for candidate in candidates:
            # Compare all pairs without stopping early, so timing says nothing about which part matched.
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureInvalid("signature does not match the body; sign the exact bytes sent with the shared secret")
