"""What an adapter may raise, and what Kanal does with each.

AdapterError
├── PayloadRejected      -- answered 4xx; the payload is kept in quarantine for inspection
│   └── SignatureInvalid -- answered 401; authenticity could not be established
├── PayloadIgnored       -- answered 200 and counted; nothing is stored (status callbacks, honeypots)
├── Throttled            -- answered 429 and counted; nothing is stored, so a flood fills no disk
├── ChannelUnavailable   -- the platform failed; retried with backoff (`retryable` says whether)
└── MediaUnavailable     -- a media file will never be downloaded (too large, gone, foreign host)
"""

from __future__ import annotations


class AdapterError(Exception):
    """Base class of every error an adapter raises on purpose."""


class PayloadRejected(AdapterError):
    """The payload cannot be accepted; the sender gets a 4xx with this message."""

    def __init__(self, message: str, *, status_code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class SignatureInvalid(PayloadRejected):
    """The payload's signature, token or timestamp did not check out."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status_code=401)


class PayloadIgnored(AdapterError):
    """The payload is authentic but carries nothing to store (a read receipt, a bot's own echo)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Throttled(AdapterError):
    """Too many deliveries from one client; the sender should wait `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class ChannelUnavailable(AdapterError):
    """The platform could not be reached or refused for now; `retryable` tells whether to try again."""

    def __init__(self, message: str, *, retryable: bool = True, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class MediaUnavailable(AdapterError):
    """A media file cannot be downloaded, now or later; the attachment is marked unavailable with `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
