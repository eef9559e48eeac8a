"""HTTP details every pulling or sending adapter needs the same way."""

from __future__ import annotations

import functools
import ssl
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx


@functools.cache
def tls() -> ssl.SSLContext:
    """One TLS context per process: building one reads the CA bundle (~0.1 s of the event loop) every poll."""
    return httpx.create_ssl_context()


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) as seconds from now; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
