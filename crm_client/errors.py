"""What sending to the CRM can end in.

CRMError(retryable, kind)
├── retryable=True
│   ├── kind="unavailable"  -- 5xx, 429, timeouts, connection refused: tried again with backoff
│   ├── kind="protocol"     -- a 2xx answer we cannot read: tried again (the idempotency key makes it safe)
│   └── kind="deferred"     -- tokens/{token}.json has no service_request_id yet: asked again later
└── retryable=False
    ├── kind="rejected"     -- 400/404/422...: dead-lettered with the CRM's own description
    ├── kind="auth"         -- 401/403, a bad API key or secret: every send pauses and an operator is alerted
    └── kind="config"       -- Kanal cannot build a request the CRM would take (unknown service, a required
                               attribute nobody configured): dead-lettered before anything is sent
"""

from __future__ import annotations

from typing import Literal

ErrorKind = Literal["unavailable", "protocol", "deferred", "rejected", "auth", "config"]


class CRMError(Exception):
    """The CRM did not take a request. `retryable` says whether trying again can help."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        kind: ErrorKind | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
        answer: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.kind: ErrorKind = kind or ("unavailable" if retryable else "rejected")
        self.status_code = status_code
        self.retry_after = retry_after
        #: The CRM's raw answer body, for the attempt log (redacted before it is stored).
        self.answer = answer


def error_for_status(
    status_code: int, description: str, retry_after: float | None = None, *, answer: str | None = None
) -> CRMError:
    """The one place an HTTP status becomes a retry policy."""
    if status_code == 429 or status_code >= 500:
        return CRMError(
            f"CRM answered {status_code}: {description}",
            retryable=True,
            kind="unavailable",
            status_code=status_code,
            retry_after=retry_after,
            answer=answer,
        )
    if status_code in (401, 403):
        return CRMError(
            f"CRM refused our credentials ({status_code}: {description}); sending is paused: fix crm.api_key "
            "(or crm.push_secret), then restart or run `kanal outbox resume`",
            retryable=False,
            kind="auth",
            status_code=status_code,
            answer=answer,
        )
    return CRMError(
        f"CRM refused the report ({status_code}: {description})",
        retryable=False,
        kind="rejected",
        status_code=status_code,
        answer=answer,
    )
